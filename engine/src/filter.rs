//! Catalog filters: a small AST, a parser for the text form used by the CLI and
//! the API, and evaluation to a roaring bitmap of object slots.
//!
//! Grammar (keywords are case-insensitive):
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | atom
//! atom    := NAME op literal                  -- redshift < 0.3, morph_class = 'spiral'
//!          | NAME "in" "(" literal, ... ")"   -- survey in ('desi', 'sdss')
//!          | NAME "between" NUM "and" NUM     -- mag_r between 17 and 19 (inclusive)
//!          | "id" "in" "(" INT, ... ")"
//!          | "cone" "(" RA "," DEC "," RADIUS ")"   -- degrees, ICRS
//! op      := "<" | "<=" | ">" | ">=" | "=" | "==" | "!="
//! literal := NUM | 'string' | "string"
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=`
    Eq,
    /// `!=`
    Ne,
}

/// A literal in a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// A number (compared with float or int attributes).
    Number(f64),
    /// A string (compared with category attributes).
    Text(String),
}

/// A filter over a collection's objects. Objects lacking the attribute a
/// condition reads never match that condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Filter {
    /// `attribute op value`.
    Compare {
        /// Attribute name.
        attribute: String,
        /// Operator.
        op: CmpOp,
        /// Right-hand side.
        value: Literal,
    },
    /// Inclusive numeric range `min <= attribute <= max`.
    Range {
        /// Attribute name.
        attribute: String,
        /// Lower bound (inclusive).
        min: f64,
        /// Upper bound (inclusive).
        max: f64,
    },
    /// Attribute equal to one of the values.
    In {
        /// Attribute name.
        attribute: String,
        /// Accepted values.
        values: Vec<Literal>,
    },
    /// Object id in the list.
    Ids(Vec<u64>),
    /// Objects within `radius_deg` of (`ra_deg`, `dec_deg`), ICRS.
    Cone {
        /// Right ascension of the centre (degrees).
        ra_deg: f64,
        /// Declination of the centre (degrees).
        dec_deg: f64,
        /// Radius (degrees).
        radius_deg: f64,
    },
    /// Objects that have a value for the attribute.
    Has(String),
    /// All sub-filters hold.
    And(Vec<Filter>),
    /// At least one sub-filter holds.
    Or(Vec<Filter>),
    /// The sub-filter does not hold.
    Not(Box<Filter>),
}

/// The longest filter text read, bytes: room for an `id in (…)` list of several
/// thousand ids, far below what would make parsing or evaluation costly.
pub const MAX_FILTER_BYTES: usize = 256 * 1024;
/// The deepest nesting of parentheses and `not` a filter may have. The parser and the
/// evaluation recurse once per level, so the bound keeps them off the stack's limit
/// whatever the input.
pub const MAX_FILTER_DEPTH: usize = 64;

impl Filter {
    /// Parses the text form (see the module documentation).
    pub fn parse(text: &str) -> Result<Filter> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(Error::FilterSyntax {
                position: 0,
                message: format!(
                    "the filter is {} bytes long; at most {MAX_FILTER_BYTES} are read",
                    text.len()
                ),
            });
        }
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            len: text.chars().count(),
            depth: 0,
        };
        let f = p.expr()?;
        if p.pos < p.tokens.len() {
            return Err(p.error("expected `and`, `or` or the end of the filter"));
        }
        Ok(f)
    }

    /// Conjunction of two filters.
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut v) => {
                v.push(other);
                Filter::And(v)
            }
            f => Filter::And(vec![f, other]),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |position: usize, message: &str| Error::FilterSyntax {
        position,
        message: message.into(),
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((Tok::LParen, start));
                i += 1
            }
            ')' => {
                out.push((Tok::RParen, start));
                i += 1
            }
            ',' => {
                out.push((Tok::Comma, start));
                i += 1
            }
            '<' | '>' | '=' | '!' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => (CmpOp::Le, 2),
                    ('>', Some('=')) => (CmpOp::Ge, 2),
                    ('=', Some('=')) => (CmpOp::Eq, 2),
                    ('!', Some('=')) => (CmpOp::Ne, 2),
                    ('<', _) => (CmpOp::Lt, 1),
                    ('>', _) => (CmpOp::Gt, 1),
                    ('=', _) => (CmpOp::Eq, 1),
                    _ => return Err(err(start, "`!` must be followed by `=`")),
                };
                out.push((Tok::Op(op), start));
                i += len;
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated string")),
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1
                        }
                    }
                }
                out.push((Tok::Str(s), start));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+'))
                {
                    // Allow exponents like 1e-3 but stop at an operator after a number.
                    if matches!(chars[i], '-' | '+') && !matches!(chars[i - 1], 'e' | 'E') {
                        break;
                    }
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let v: f64 = s
                    .parse()
                    .map_err(|_| err(start, &format!("`{s}` is not a number")))?;
                if !v.is_finite() {
                    return Err(err(start, "numbers must be finite"));
                }
                out.push((Tok::Num(v), start));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push((Tok::Ident(chars[start..i].iter().collect()), start));
            }
            other => return Err(err(start, &format!("unexpected character `{other}`"))),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    len: usize,
    /// Parentheses and `not`s open at the current token.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }
    fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.len, |(_, p)| *p)
    }
    fn error(&self, message: &str) -> Error {
        Error::FilterSyntax {
            position: self.here(),
            message: message.into(),
        }
    }
    fn keyword(&mut self, kw: &str) -> bool {
        if let Some(Tok::Ident(s)) = self.peek() {
            if s.eq_ignore_ascii_case(kw) {
                self.pos += 1;
                return true;
            }
        }
        false
    }
    fn expect(&mut self, tok: Tok, what: &str) -> Result<()> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }
    fn number(&mut self) -> Result<f64> {
        match self.peek() {
            Some(Tok::Num(v)) => {
                let v = *v;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error("expected a number")),
        }
    }
    fn literal(&mut self) -> Result<Literal> {
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                Ok(Literal::Number(v))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Literal::Text(s))
            }
            _ => Err(self.error("expected a number or a quoted string")),
        }
    }
    fn expr(&mut self) -> Result<Filter> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Filter::Or(parts)
        })
    }
    fn and(&mut self) -> Result<Filter> {
        let mut parts = vec![self.unary()?];
        while self.keyword("and") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Filter::And(parts)
        })
    }
    /// Enters one level of nesting, refusing to go past [`MAX_FILTER_DEPTH`].
    fn descend(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.error(&format!(
                "parentheses and `not` nest deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        Ok(())
    }
    fn unary(&mut self) -> Result<Filter> {
        if self.keyword("not") {
            self.descend()?;
            let f = Filter::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(f);
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            self.descend()?;
            let f = self.expr()?;
            self.expect(Tok::RParen, "`)`")?;
            self.depth -= 1;
            return Ok(f);
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Filter> {
        let name = match self.peek().cloned() {
            Some(Tok::Ident(s)) => s,
            _ => return Err(self.error("expected an attribute name, `id`, `cone`, `not` or `(`")),
        };
        self.pos += 1;
        if name.eq_ignore_ascii_case("cone") {
            self.expect(Tok::LParen, "`(` after cone")?;
            let ra = self.number()?;
            self.expect(Tok::Comma, "`,` after the cone's RA (degrees)")?;
            let dec = self.number()?;
            self.expect(Tok::Comma, "`,` after the cone's Dec (degrees)")?;
            let radius = self.number()?;
            self.expect(Tok::RParen, "`)` after the cone's radius (degrees)")?;
            return Ok(Filter::Cone {
                ra_deg: ra,
                dec_deg: dec,
                radius_deg: radius,
            });
        }
        if name.eq_ignore_ascii_case("has") && self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let attr = match self.peek().cloned() {
                Some(Tok::Ident(s)) => s,
                _ => return Err(self.error("expected an attribute name")),
            };
            self.pos += 1;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(Filter::Has(attr));
        }
        if self.keyword("in") {
            self.expect(Tok::LParen, "`(` after in")?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                values.push(self.literal()?);
            }
            self.expect(Tok::RParen, "`)` or `,`")?;
            if name == "id" {
                let ids = values
                    .iter()
                    .map(|v| match v {
                        Literal::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n < 1.8e19 => {
                            Ok(*n as u64)
                        }
                        _ => Err(self.error("`id in (...)` takes non-negative integers")),
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Filter::Ids(ids));
            }
            return Ok(Filter::In {
                attribute: name,
                values,
            });
        }
        if self.keyword("between") {
            let min = self.number()?;
            if !self.keyword("and") {
                return Err(self.error("expected `and` in `between ... and ...`"));
            }
            let max = self.number()?;
            return Ok(Filter::Range {
                attribute: name,
                min,
                max,
            });
        }
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => {
                return Err(
                    self.error("expected a comparison (<, <=, >, >=, =, !=), `in` or `between`")
                )
            }
        };
        self.pos += 1;
        let value = self.literal()?;
        if name == "id" {
            return match (op, value) {
                (CmpOp::Eq, Literal::Number(n)) if n >= 0.0 && n.fract() == 0.0 => {
                    Ok(Filter::Ids(vec![n as u64]))
                }
                _ => Err(self.error("`id` supports `id = N` and `id in (...)`")),
            };
        }
        Ok(Filter::Compare {
            attribute: name,
            op,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_and_huge_texts_are_errors_not_stack_overflows() {
        // 64 levels parse; thousands (a 5 KB body) are refused without recursing into them.
        let ok = format!("{}redshift < 1{}", "(".repeat(64), ")".repeat(64));
        assert!(Filter::parse(&ok).is_ok());
        for deep in [
            format!("{}redshift < 1{}", "(".repeat(5000), ")".repeat(5000)),
            format!("{}redshift < 1", "not ".repeat(5000)),
            format!("{}redshift < 1{}", "(not ".repeat(3000), ")".repeat(3000)),
        ] {
            let e = Filter::parse(&deep).unwrap_err().to_string();
            assert!(e.contains("nest deeper than 64"), "{e}");
        }
        let long = format!("id in ({})", vec!["1"; 200_000].join(","));
        let e = Filter::parse(&long).unwrap_err().to_string();
        assert!(e.contains("at most 262144"), "{e}");
    }

    #[test]
    fn parses_the_documented_forms() {
        let f = Filter::parse("redshift < 0.3 and mag_r <= 19").unwrap();
        assert!(matches!(f, Filter::And(ref v) if v.len() == 2));
        let f =
            Filter::parse("not (morph_class = 'spiral' or survey in ('desi', \"sdss\"))").unwrap();
        assert!(matches!(f, Filter::Not(_)));
        let f = Filter::parse("cone(150.1, -2.5, 0.25) AND id in (1, 2, 3)").unwrap();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Cone {
                    ra_deg: 150.1,
                    dec_deg: -2.5,
                    radius_deg: 0.25
                },
                Filter::Ids(vec![1, 2, 3])
            ])
        );
        let f = Filter::parse("mag_r between 17 and 1.9e1").unwrap();
        assert_eq!(
            f,
            Filter::Range {
                attribute: "mag_r".into(),
                min: 17.0,
                max: 19.0
            }
        );
        let f = Filter::parse("redshift>-0.5").unwrap();
        assert!(
            matches!(f, Filter::Compare { op: CmpOp::Gt, value: Literal::Number(v), .. } if v == -0.5)
        );
    }

    #[test]
    fn errors_name_the_position() {
        for (text, pos) in [
            ("redshift <", 10),
            ("redshift < 0.3 and", 18),
            ("(redshift < 1", 13),
            ("redshift ~ 2", 9),
            ("z < 'abc", 4),
            ("cone(1, 2)", 9),
        ] {
            match Filter::parse(text) {
                Err(Error::FilterSyntax { position, .. }) => assert_eq!(position, pos, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
