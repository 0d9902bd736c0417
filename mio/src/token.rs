//! `Token`: the number a registration chooses and its events carry back.

/// Associates an event with the registration it came from, as `mio::Token`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

impl From<Token> for usize {
    fn from(token: Token) -> usize {
        token.0
    }
}
