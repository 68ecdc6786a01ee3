//! Kea 2.2's expression language, as used by client class `test`s: a
//! lexer ([`lexer`]), a parser into a typed tree ([`parser`], [`ast`]) run
//! once at config time, and an evaluator over a received packet
//! ([`eval`]). Pure: no configuration, no I/O; the parser asks a
//! [`Context`] for option names and classes defined so far.
//!
//! Kea 2.2 has no `lcase`/`ucase` and no `KNOWN`/`UNKNOWN` keywords (those
//! are classes, read with `member('KNOWN')`); neither has this.
//!
//! Deliberate difference: `.text` of an option Kea keeps as a typed value
//! other than a string (an address, an integer) reads as Kea's generic
//! `type=NNN, len=NNN: xx:xx` form, not Kea's per-type text.

pub mod ast;
pub mod eval;
pub mod lexer;
pub mod parser;

pub use ast::{Bool, Str};
pub use eval::{EvalError, Packet, eval_bool, eval_str};
pub use parser::{Context, ParseError, Parsed, parse_bool, parse_string};

#[cfg(test)]
mod tests;
