//! Kea `Dhcp4` configuration: parsing, validation and the runtime types the server uses.
