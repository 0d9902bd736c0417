//! The `.ops` parser: turns a conformance script into a checked list of operations before
//! anything runs, so that a typo is reported with its line instead of half-running a script.
//!
//! The grammar is one operation per line, `#` starts a comment, and names are lowercase
//! identifiers that must be defined (by `tcp`, `unix`, `pipe`, `eventfd`, `listen`,
//! `connect`, `epoll`, `accept` or `dup`) before they are used, and only once.

use crate::os::{CtlOp, Events, Shutdown};
use std::fmt;

/// The longest `read X N` or `write X N` a script may ask for; a bigger buffer would only
/// measure autotuning, which conformance scripts avoid.
pub const TRANSFER_BYTES_MAX: u64 = 1 << 20;

/// The largest `wait P max N`; the default when `max` is omitted is
/// [`WAIT_EVENTS_DEFAULT`].
pub const WAIT_EVENTS_MAX: u64 = 1024;

/// `maxevents` of a plain `wait P`: more than any script registers.
pub const WAIT_EVENTS_DEFAULT: usize = 64;

/// Every operation with its usage line, in the order the unknown-op message lists them.
const USAGES: [(&str, &str); 20] = [
    ("tcp", "tcp A B"),
    ("unix", "unix A B"),
    ("pipe", "pipe R W"),
    ("eventfd", "eventfd E"),
    ("listen", "listen L"),
    ("connect", "connect C L"),
    ("epoll", "epoll P"),
    ("accept", "accept S L"),
    ("ctl", "ctl P add|mod|del X [FLAGS]"),
    ("wait", "wait P [max N]"),
    ("write", "write X N"),
    ("fill", "fill X"),
    ("read", "read X N"),
    ("drain", "drain X"),
    ("shutdown", "shutdown X rd|wr|rdwr"),
    ("close", "close X"),
    ("dup", "dup X Y"),
    ("rst", "rst X"),
    ("efd_write", "efd_write E N"),
    ("efd_read", "efd_read E"),
];

/// The interest flags a `ctl` line may name, with their bits.
const FLAGS: [(&str, Events); 7] = [
    ("in", Events::IN),
    ("out", Events::OUT),
    ("rdhup", Events::RDHUP),
    ("pri", Events::PRI),
    ("et", Events::ET),
    ("oneshot", Events::ONESHOT),
    ("exclusive", Events::EXCLUSIVE),
];

/// A script name, as the index of its first definition. The runner uses the index as the
/// epoll token, so an event can be named even after its name was closed.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Name(pub usize);

/// One operation, with its names resolved.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Op {
    /// `tcp A B`: a connected client `a` and the accepted end `b`.
    Tcp { client: Name, server: Name },
    /// `unix A B`: a unix stream socketpair.
    Unix { a: Name, b: Name },
    /// `pipe R W`: the read end and the write end.
    Pipe { read: Name, write: Name },
    /// `eventfd E`.
    Eventfd { efd: Name },
    /// `listen L`: a listener on 127.0.0.1, ephemeral port.
    Listen { listener: Name },
    /// `connect C L`: a client connected to the address `listener` was bound to.
    Connect { client: Name, listener: Name },
    /// `epoll P`.
    Epoll { epoll: Name },
    /// `accept S L`.
    Accept { socket: Name, listener: Name },
    /// `ctl P add|mod|del X [FLAGS]`.
    Ctl {
        epoll: Name,
        op: CtlOp,
        target: Name,
        interest: Events,
    },
    /// `wait P [max N]`, always with timeout 0.
    Wait { epoll: Name, max_events: usize },
    /// `write X N`.
    Write { fd: Name, len: usize },
    /// `fill X`: write 4 KiB chunks until `EAGAIN`.
    Fill { fd: Name },
    /// `read X N`.
    Read { fd: Name, len: usize },
    /// `drain X`: read until `EAGAIN` or end of file.
    Drain { fd: Name },
    /// `shutdown X rd|wr|rdwr`.
    Shutdown { fd: Name, how: Shutdown },
    /// `close X`.
    Close { fd: Name },
    /// `dup X Y`: `copy` becomes a new descriptor of `fd`'s open file description.
    Dup { fd: Name, copy: Name },
    /// `rst X`: `SO_LINGER {1, 0}` then close.
    Rst { fd: Name },
    /// `efd_write E N`.
    EfdWrite { efd: Name, value: u64 },
    /// `efd_read E`.
    EfdRead { efd: Name },
}

/// One operation line of a script.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Line {
    /// The 1-based line number in the file.
    pub number: usize,
    /// The operation as written: trimmed, comment stripped. It starts its transcript line.
    pub text: String,
    /// The parsed operation.
    pub op: Op,
}

/// A parsed, checked script.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Script {
    /// Every defined name; `Name(i)` is `names[i]`.
    pub names: Vec<String>,
    /// The operation lines, in file order.
    pub lines: Vec<Line>,
}

impl Script {
    /// The text of a name.
    pub fn name(&self, name: Name) -> &str {
        &self.names[name.0]
    }
}

/// Why a script was rejected, and where.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

/// Parses a whole script. The first error ends parsing; nothing has run at that point.
pub fn parse(source: &str) -> Result<Script, ParseError> {
    let mut script = Script::default();
    // The line each name was defined on, to point at the first definition of a duplicate.
    let mut defined_on: Vec<usize> = Vec::new();
    for (line_idx, raw) in source.lines().enumerate() {
        let number = line_idx + 1;
        let without_comment = match raw.find('#') {
            Some(hash_idx) => &raw[..hash_idx],
            None => raw,
        };
        let text = without_comment.trim();
        if text.is_empty() {
            continue;
        }
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let mut cursor = Cursor {
            script: &mut script,
            defined_on: &mut defined_on,
            number,
            tokens: &tokens,
            next_idx: 1,
            usage: "",
        };
        let op = cursor.op().map_err(|message| ParseError {
            line: number,
            message,
        })?;
        script.lines.push(Line {
            number,
            text: text.to_string(),
            op,
        });
    }
    Ok(script)
}

/// Walks the tokens of one line. Names it defines are added to the script as they are read,
/// so `dup a a` is rejected as a duplicate and `tcp a b` may not use `a` twice.
struct Cursor<'s, 't> {
    script: &'s mut Script,
    defined_on: &'s mut Vec<usize>,
    number: usize,
    tokens: &'t [&'t str],
    next_idx: usize,
    usage: &'static str,
}

impl<'t> Cursor<'_, 't> {
    fn op(&mut self) -> Result<Op, String> {
        let verb = self.tokens[0];
        let Some(&(_, usage)) = USAGES.iter().find(|(name, _)| *name == verb) else {
            let known: Vec<&str> = USAGES.iter().map(|(name, _)| *name).collect();
            return Err(format!(
                "unknown op '{verb}' (expected one of: {})",
                known.join(", ")
            ));
        };
        self.usage = usage;
        let op = match verb {
            "tcp" => Op::Tcp {
                client: self.new_name("A")?,
                server: self.new_name("B")?,
            },
            "unix" => Op::Unix {
                a: self.new_name("A")?,
                b: self.new_name("B")?,
            },
            "pipe" => Op::Pipe {
                read: self.new_name("R")?,
                write: self.new_name("W")?,
            },
            "eventfd" => Op::Eventfd {
                efd: self.new_name("E")?,
            },
            "listen" => Op::Listen {
                listener: self.new_name("L")?,
            },
            "connect" => Op::Connect {
                client: self.new_name("C")?,
                listener: self.name("L")?,
            },
            "epoll" => Op::Epoll {
                epoll: self.new_name("P")?,
            },
            "accept" => Op::Accept {
                socket: self.new_name("S")?,
                listener: self.name("L")?,
            },
            "ctl" => {
                let epoll = self.name("P")?;
                let op = match self.token("add|mod|del")? {
                    "add" => CtlOp::Add,
                    "mod" => CtlOp::Mod,
                    "del" => CtlOp::Del,
                    other => {
                        return Err(format!(
                            "bad ctl operation '{other}' (expected one of: add, mod, del)"
                        ))
                    }
                };
                let target = self.name("X")?;
                let interest = match self.optional_token() {
                    Some(list) => flags(list)?,
                    None => Events::NONE,
                };
                Op::Ctl {
                    epoll,
                    op,
                    target,
                    interest,
                }
            }
            "wait" => {
                let epoll = self.name("P")?;
                let max_events = match self.optional_token() {
                    None => WAIT_EVENTS_DEFAULT,
                    Some("max") => self.number("N", WAIT_EVENTS_MAX)? as usize,
                    Some(other) => {
                        return Err(format!(
                            "expected 'max' or the end of the line after the epoll name, \
                             found '{other}' (usage: {})",
                            self.usage
                        ))
                    }
                };
                Op::Wait { epoll, max_events }
            }
            "write" => Op::Write {
                fd: self.name("X")?,
                len: self.number("N", TRANSFER_BYTES_MAX)? as usize,
            },
            "fill" => Op::Fill {
                fd: self.name("X")?,
            },
            "read" => Op::Read {
                fd: self.name("X")?,
                len: self.number("N", TRANSFER_BYTES_MAX)? as usize,
            },
            "drain" => Op::Drain {
                fd: self.name("X")?,
            },
            "shutdown" => {
                let fd = self.name("X")?;
                let how = match self.token("rd|wr|rdwr")? {
                    "rd" => Shutdown::Read,
                    "wr" => Shutdown::Write,
                    "rdwr" => Shutdown::Both,
                    other => {
                        return Err(format!(
                            "bad shutdown direction '{other}' (expected one of: rd, wr, rdwr)"
                        ))
                    }
                };
                Op::Shutdown { fd, how }
            }
            "close" => Op::Close {
                fd: self.name("X")?,
            },
            "dup" => Op::Dup {
                fd: self.name("X")?,
                copy: self.new_name("Y")?,
            },
            "rst" => Op::Rst {
                fd: self.name("X")?,
            },
            "efd_write" => Op::EfdWrite {
                efd: self.name("E")?,
                value: self.number("N", u64::MAX)?,
            },
            "efd_read" => Op::EfdRead {
                efd: self.name("E")?,
            },
            _ => unreachable!("BUG: '{verb}' is in USAGES but has no parser"),
        };
        if let Some(extra) = self.tokens.get(self.next_idx) {
            return Err(format!(
                "unexpected extra argument '{extra}' (usage: {})",
                self.usage
            ));
        }
        Ok(op)
    }

    /// The next token, which must be there; `what` names it in the usage line.
    fn token(&mut self, what: &str) -> Result<&'t str, String> {
        match self.optional_token() {
            Some(token) => Ok(token),
            None => Err(format!("missing argument {what} (usage: {})", self.usage)),
        }
    }

    fn optional_token(&mut self) -> Option<&'t str> {
        let token = *self.tokens.get(self.next_idx)?;
        self.next_idx += 1;
        Some(token)
    }

    /// A name that this line defines.
    fn new_name(&mut self, what: &str) -> Result<Name, String> {
        let text = self.token(what)?;
        check_identifier(text)?;
        if let Some(existing_idx) = self.script.names.iter().position(|n| n == text) {
            return Err(format!(
                "name '{text}' is already defined on line {} (each name is defined once)",
                self.defined_on[existing_idx]
            ));
        }
        self.script.names.push(text.to_string());
        self.defined_on.push(self.number);
        Ok(Name(self.script.names.len() - 1))
    }

    /// A name an earlier line defined.
    fn name(&mut self, what: &str) -> Result<Name, String> {
        let text = self.token(what)?;
        check_identifier(text)?;
        match self.script.names.iter().position(|n| n == text) {
            Some(name_idx) => Ok(Name(name_idx)),
            None => Err(format!(
                "undefined name '{text}' for {what} (usage: {}; a name must be defined \
                 by an earlier line)",
                self.usage
            )),
        }
    }

    /// A decimal number in `0..=max`.
    fn number(&mut self, what: &str, max: u64) -> Result<u64, String> {
        let text = self.token(what)?;
        match text.parse::<u64>() {
            Ok(value) if value <= max => Ok(value),
            _ => Err(format!(
                "bad number '{text}' for {what} (expected a decimal integer from 0 to {max}; \
                 usage: {})",
                self.usage
            )),
        }
    }
}

/// Names are lowercase identifiers: a letter, then letters, digits or `_`.
fn check_identifier(text: &str) -> Result<(), String> {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "bad name '{text}' (expected a lowercase identifier: a letter, then letters, \
             digits or '_')"
        ))
    }
}

/// A comma list of interest flags.
fn flags(list: &str) -> Result<Events, String> {
    let mut interest = Events::NONE;
    for flag in list.split(',') {
        match FLAGS.iter().find(|(name, _)| *name == flag) {
            Some((_, bit)) => interest |= *bit,
            None => {
                let known: Vec<&str> = FLAGS.iter().map(|(name, _)| *name).collect();
                return Err(format!(
                    "bad flag '{flag}' (expected a comma list of: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(interest)
}
