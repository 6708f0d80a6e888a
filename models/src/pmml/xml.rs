//! Hardened XML loading and the small attribute helpers every builder uses.
//!
//! The DOM lives only while the evaluation plan is built; scoring never sees XML.

use roxmltree::{Document, Node, ParsingOptions};

use crate::error::{Error, Result};

/// Largest model document accepted. Real forests exported by JPMML stay far below this,
/// while a hostile 100 MB upload is refused before any parsing work.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Deepest element nesting accepted; plan building recurses over elements, so this also
/// bounds the stack.
pub const MAX_DEPTH: usize = 400;
/// Most XML nodes accepted (elements, text, attributes are not counted by roxmltree).
pub const MAX_NODES: u32 = 8_000_000;

/// Checks the size, encoding and nesting limits before any DOM is built.
pub fn check(bytes: &[u8]) -> Result<&str> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: MAX_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8(e.to_string()))?;
    // A BOM is legal in front of the XML declaration but roxmltree refuses it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_depth(text)?;
    Ok(text)
}

/// Parses text that passed [`check`], refusing DOCTYPEs and too many nodes.
pub fn parse(text: &str) -> Result<Document<'_>> {
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Error::Doctype,
        roxmltree::Error::NodesLimitReached => Error::TooManyNodes {
            limit: MAX_NODES as usize,
        },
        other => {
            let pos = other.pos();
            Error::Xml {
                line: pos.row,
                column: pos.col,
                reason: other.to_string(),
            }
        }
    })
}

/// A cheap pre-scan of element nesting, so that a deeply nested document is refused before
/// it is turned into a DOM. Miscounts on exotic markup only make the real parser decide.
fn check_depth(text: &str) -> Result<()> {
    let b = text.as_bytes();
    let mut depth: usize = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            match b.get(i + 1) {
                Some(b'/') => depth = depth.saturating_sub(1),
                Some(b'?') | Some(b'!') => {}
                Some(_) => {
                    // Find the end of the tag to see whether it is self-closing.
                    let mut j = i + 1;
                    let mut quote = 0u8;
                    while j < b.len() {
                        let c = b[j];
                        if quote != 0 {
                            if c == quote {
                                quote = 0;
                            }
                        } else if c == b'"' || c == b'\'' {
                            quote = c;
                        } else if c == b'>' {
                            break;
                        }
                        j += 1;
                    }
                    if !(j > 0 && j < b.len() && b[j - 1] == b'/') {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(Error::TooDeep { limit: MAX_DEPTH });
                        }
                    }
                    i = j;
                }
                None => {}
            }
        }
        i += 1;
    }
    Ok(())
}

/// Element children of `node` with local name `name` (namespaces are ignored: PMML 4.1 to
/// 4.4 differ only in their namespace URI).
pub fn children<'a, 'i>(
    node: Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// All element children.
pub fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|c| c.is_element())
}

pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, name).next()
}

pub fn name<'a>(node: Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

pub fn attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name)
}

pub fn req_attr<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str> {
    node.attribute(name).ok_or_else(|| {
        Error::InvalidModel(format!(
            "<{}> lacks the attribute `{name}`",
            node.tag_name().name()
        ))
    })
}

pub fn parse_f64(s: &str, what: &str) -> Result<f64> {
    let t = s.trim();
    let v = match t {
        "INF" | "Infinity" => Ok(f64::INFINITY),
        "-INF" | "-Infinity" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => t.parse::<f64>(),
    };
    v.map_err(|_| Error::InvalidModel(format!("`{s}` is not a number ({what})")))
}

pub fn num_attr(node: Node, name: &str) -> Result<Option<f64>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(s) => parse_f64(s, &format!("{}@{name}", node.tag_name().name())).map(Some),
    }
}

pub fn req_num(node: Node, name: &str) -> Result<f64> {
    let s = req_attr(node, name)?;
    parse_f64(s, &format!("{}@{name}", node.tag_name().name()))
}

pub fn unsupported(node: Node, what: &str) -> Error {
    Error::Unsupported(format!("<{}> {what}", node.tag_name().name()))
}

/// The tokens of a PMML `Array`: whitespace separated, double quotes group a token and
/// `\"` escapes a quote inside one.
pub fn array_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut had_token = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '\\' && chars.peek() == Some(&'"') {
                cur.push('"');
                chars.next();
            } else if c == '"' {
                in_quotes = false;
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            in_quotes = true;
            had_token = true;
        } else if c.is_whitespace() {
            if had_token {
                out.push(std::mem::take(&mut cur));
                had_token = false;
            }
        } else {
            cur.push(c);
            had_token = true;
        }
    }
    if had_token {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_tokens_handle_quotes() {
        assert_eq!(
            array_tokens(r#"a "b c" "" d\"#),
            vec!["a", "b c", "", "d\\"]
        );
        assert_eq!(
            array_tokens(r#""say \"hi\"" 1.5"#),
            vec!["say \"hi\"", "1.5"]
        );
    }

    #[test]
    fn depth_limit() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(check_depth(&deep), Err(Error::TooDeep { .. })));
        let flat = "<a/>".repeat(MAX_DEPTH * 3);
        assert!(check_depth(&flat).is_ok());
    }

    #[test]
    fn doctype_is_rejected() {
        let doc = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><PMML/>"#;
        assert!(matches!(parse(doc), Err(Error::Doctype)));
    }
}
