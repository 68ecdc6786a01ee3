fn main() {
    println!("xdhcpd: embedded eBPF object of {} bytes", dhcp_user::xdp::EBPF_OBJECT.len());
}
