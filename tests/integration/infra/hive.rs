//! Hive/Glue type names (`bigint`, `struct<a:int,b:map<string,bigint>>`, ...) parsed into a tree,
//! and a check that a JSON value (a serialized run manifest) has that shape.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum HiveType {
    Primitive(String),
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
}

pub fn parse(text: &str) -> Result<HiveType, String> {
    let mut p = Parser { s: text, pos: 0 };
    let t = p.ty()?;
    if p.pos != text.len() {
        return Err(format!("trailing text in {text:?} at {}", p.pos));
    }
    Ok(t)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ident(&mut self) -> String {
        let rest = &self.s[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    fn eat(&mut self, c: char) -> Result<(), String> {
        if self.s[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {c:?} in {:?} at {}", self.s, self.pos))
        }
    }

    fn ty(&mut self) -> Result<HiveType, String> {
        let name = self.ident();
        match name.as_str() {
            "array" => {
                self.eat('<')?;
                let item = self.ty()?;
                self.eat('>')?;
                Ok(HiveType::Array(Box::new(item)))
            }
            "map" => {
                self.eat('<')?;
                let k = self.ty()?;
                self.eat(',')?;
                let v = self.ty()?;
                self.eat('>')?;
                Ok(HiveType::Map(Box::new(k), Box::new(v)))
            }
            "struct" => {
                self.eat('<')?;
                let mut fields = Vec::new();
                loop {
                    let field = self.ident();
                    self.eat(':')?;
                    fields.push((field, self.ty()?));
                    if self.eat(',').is_err() {
                        break;
                    }
                }
                self.eat('>')?;
                Ok(HiveType::Struct(fields))
            }
            "decimal" => {
                // decimal(p,s)
                let start = self.pos;
                let close = self.s[start..].find(')').ok_or("unclosed decimal(")? + start;
                self.pos = close + 1;
                Ok(HiveType::Primitive(format!(
                    "decimal{}",
                    &self.s[start..=close]
                )))
            }
            "" => Err(format!("expected a type in {:?} at {}", self.s, self.pos)),
            _ => Ok(HiveType::Primitive(name)),
        }
    }
}

/// Why `value` (found at `path`) cannot be read as `ty` when the manifest's JSON is decoded into
/// the `runs` row (`duff_delta::runs::runs_file`), if it cannot.
/// `null` fits every type (absent or null values read as NULL); keys the table does not name
/// are ignored by the decoder, so only missing or mistyped struct fields count.
pub fn mismatch(path: &str, ty: &HiveType, value: &Value) -> Option<String> {
    let fits = |ok: bool, want: &str| {
        (!ok).then(|| format!("{path}: the manifest has {value}, the table says {want}"))
    };
    match (ty, value) {
        (_, Value::Null) => None,
        (HiveType::Primitive(p), v) => match p.as_str() {
            "string" => fits(v.is_string(), "string"),
            "bigint" | "int" | "smallint" | "tinyint" => fits(v.is_u64() || v.is_i64(), p),
            "double" | "float" => fits(v.is_number(), p),
            "boolean" => fits(v.is_boolean(), "boolean"),
            other => Some(format!("{path}: unexpected type {other} in the runs table")),
        },
        (HiveType::Array(item), Value::Array(items)) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| mismatch(&format!("{path}[{i}]"), item, v)),
        (HiveType::Map(_, v_ty), Value::Object(m)) => m
            .iter()
            .find_map(|(k, v)| mismatch(&format!("{path}.{k}"), v_ty, v)),
        (HiveType::Struct(fields), Value::Object(m)) => {
            for (name, _) in fields {
                if !m.contains_key(name) {
                    return Some(format!(
                        "{path}.{name}: in the runs table but not in the manifest"
                    ));
                }
            }
            fields
                .iter()
                .find_map(|(name, t)| mismatch(&format!("{path}.{name}"), t, &m[name]))
        }
        (t, v) => Some(format!(
            "{path}: the manifest has {v}, the table says {t:?}"
        )),
    }
}
