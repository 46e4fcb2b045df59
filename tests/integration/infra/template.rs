//! Loading CloudFormation templates: YAML with short-form intrinsics (`!Ref`, `!Sub`, ...) turned
//! into the long form (`{"Ref": ..}`, `{"Fn::Sub": ..}`) as JSON values, plus a canonical text
//! rendering of intrinsic expressions so tests can compare what a value *means*.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/templates")
}

/// One parsed template.
pub struct Template {
    pub file: String,
    pub text: String,
    pub root: Value,
}

impl Template {
    /// A template of `infra/templates`, by file name.
    pub fn load(file: &str) -> Template {
        Template {
            file: file.to_string(),
            ..Template::load_path(&templates_dir().join(file))
        }
    }

    /// A template anywhere (`file` is then its path).
    pub fn load_path(path: &Path) -> Template {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
        Template {
            file,
            text,
            root: long_form(yaml),
        }
    }

    /// Every template under `infra/templates`, sorted by file name.
    pub fn all() -> Vec<Template> {
        let mut files: Vec<String> = std::fs::read_dir(templates_dir())
            .expect("infra/templates exists")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".yaml"))
            .collect();
        files.sort();
        files.iter().map(|f| Template::load(f)).collect()
    }

    /// `(logical id, properties)` of every resource of the given type.
    pub fn resources<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.root["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(move |(_, r)| r["Type"] == ty)
            .map(|(id, r)| (id.as_str(), &r["Properties"]))
    }

    pub fn resource(&self, id: &str) -> &Value {
        let r = &self.root["Resources"][id];
        assert!(r.is_object(), "{}: no resource {id}", self.file);
        &r["Properties"]
    }

    pub fn parameter(&self, name: &str) -> &Value {
        let p = &self.root["Parameters"][name];
        assert!(p.is_object(), "{}: no parameter {name}", self.file);
        p
    }

    /// The default value of a parameter, as text.
    pub fn default_of(&self, name: &str) -> String {
        scalar(&self.parameter(name)["Default"])
            .unwrap_or_else(|| panic!("{}: parameter {name} has no default", self.file))
    }
}

/// Short-form tags become long-form intrinsic objects; everything else maps one to one.
fn long_form(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (scalar(&long_form(k)).expect("scalar key"), long_form(v)))
                .collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = if name == "Ref" || name == "Condition" {
                name.to_string()
            } else {
                format!("Fn::{name}")
            };
            let mut value = long_form(t.value);
            // `!GetAtt Res.Attr` is `Fn::GetAtt: [Res, Attr]`.
            if name == "GetAtt"
                && let Value::String(s) = &value
                && let Some((res, attr)) = s.split_once('.')
            {
                value = Value::Array(vec![res.into(), attr.into()]);
            }
            Value::Object(Map::from_iter([(key, value)]))
        }
    }
}

/// A string, number or boolean as text.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value or a list of values, as a list (IAM's `Action: x` / `Action: [x, y]`).
pub fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Canonical text of a value: literals as they are, `Ref X` as `{X}`, `GetAtt X.Y` as `{X.Y}`,
/// `ImportValue X` as `import(X)`, and `Sub` with its variables substituted the same way
/// (`${!x}`, the escape for a literal `${x}`, becomes `${x}`).
pub fn render(v: &Value) -> String {
    if let Some(s) = scalar(v) {
        return s;
    }
    let Some((key, arg)) = v
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
    else {
        return v.to_string();
    };
    match key.as_str() {
        "Ref" => format!("{{{}}}", render(arg)),
        "Fn::GetAtt" => match arg {
            Value::Array(parts) => format!(
                "{{{}}}",
                parts.iter().map(render).collect::<Vec<_>>().join(".")
            ),
            other => format!("{{{}}}", render(other)),
        },
        "Fn::ImportValue" => format!("import({})", render(arg)),
        "Fn::Sub" => match arg {
            Value::String(s) => substitute(s, &Map::new()),
            Value::Array(parts) if parts.len() == 2 => substitute(
                parts[0].as_str().expect("Fn::Sub template is a string"),
                parts[1].as_object().expect("Fn::Sub variables are a map"),
            ),
            other => panic!("malformed Fn::Sub: {other}"),
        },
        _ => v.to_string(),
    }
}

fn substitute(template: &str, vars: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed ${ in Fn::Sub") + start;
        let name = &rest[start + 2..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str(&format!("${{{literal}}}"));
        } else if let Some(value) = vars.get(name) {
            out.push_str(&render(value));
        } else {
            out.push_str(&format!("{{{name}}}"));
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every IAM policy document in a template: identity policies of roles and policies, and the
/// resource policies of buckets, queues and topics. `(where, document)`.
pub fn policy_documents(t: &Template) -> Vec<(String, &Value)> {
    let mut docs = Vec::new();
    for (id, props) in t.resources("AWS::IAM::Role") {
        for p in one_or_many(&props["Policies"]) {
            docs.push((
                format!("{} {id} policy {}", t.file, render(&p["PolicyName"])),
                &p["PolicyDocument"],
            ));
        }
    }
    for ty in [
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
    ] {
        for (id, props) in t.resources(ty) {
            docs.push((format!("{} {id}", t.file), &props["PolicyDocument"]));
        }
    }
    docs
}
