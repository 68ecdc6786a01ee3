//! Kea's control channel as data: a parsed [`Request`], an [`Answer`]
//! with Kea's `result` codes, and typed access to `arguments` with Kea's
//! wording for argument errors. No HTTP and no daemon state: the control
//! API, the HA peer client and the tests all speak through these.

use serde_json::{Map, Value, json};
use thiserror::Error;

/// Kea's `result` values (`CONTROL_RESULT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    /// The command did what was asked.
    Success = 0,
    /// It failed; `text` says why. Nothing was changed.
    Error = 1,
    /// The command is not supported (unknown, or not built yet).
    Unsupported = 2,
    /// It worked but found nothing (no lease, no lease deleted).
    Empty = 3,
    /// `ha-maintenance-notify` refused in this HA state (HA-private code).
    MaintenanceNotAllowed = 1001,
}

/// One command's answer, as Kea shapes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// What happened.
    pub result: ResultCode,
    /// Human-readable summary; Kea omits it for some successes.
    pub text: Option<String>,
    /// The payload (`null` when absent).
    pub arguments: Option<Value>,
}

impl Answer {
    /// A result with a text and no arguments.
    pub fn new(result: ResultCode, text: impl Into<String>) -> Self {
        Answer {
            result,
            text: Some(text.into()),
            arguments: None,
        }
    }

    /// Success with a text.
    pub fn ok(text: impl Into<String>) -> Self {
        Answer::new(ResultCode::Success, text)
    }

    /// Failure (result 1).
    pub fn error(text: impl Into<String>) -> Self {
        Answer::new(ResultCode::Error, text)
    }

    /// Drops the text (Kea sends none for some successes).
    pub fn without_text(mut self) -> Self {
        self.text = None;
        self
    }

    /// Adds arguments.
    pub fn with_args(mut self, arguments: Value) -> Self {
        self.arguments = Some(arguments);
        self
    }

    /// The JSON object Kea sends (keys sorted, as Kea prints them).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("result".into(), json!(self.result as i32));
        if let Some(t) = &self.text {
            m.insert("text".into(), json!(t));
        }
        if let Some(a) = &self.arguments {
            m.insert("arguments".into(), a.clone());
        }
        Value::Object(m)
    }
}

/// A parsed command: what Kea's control agent accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Command name, e.g. `lease4-get`.
    pub command: String,
    /// `arguments`, any JSON (each command checks its own shape).
    pub arguments: Option<Value>,
    /// `service` (`["dhcp4"]`): present means control-agent framing.
    pub service: Option<Vec<String>>,
}

/// Why a body is not a command at all (HTTP 400, nothing runs).
#[derive(Debug, Error, PartialEq)]
pub enum RequestError {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("command must be a JSON map")]
    NotMap,
    /// No `command` key.
    #[error("missing mandatory 'command' parameter")]
    NoCommand,
    /// `command` is not a string.
    #[error("'command' element in command message is not a string")]
    CommandNotString,
    /// `service` is not a list of strings.
    #[error("'service' must be a list of strings")]
    BadService,
}

impl Request {
    /// Parses a request body. Unknown top-level keys are ignored, as Kea does.
    pub fn parse(body: &[u8]) -> Result<Request, RequestError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
        let Value::Object(mut m) = v else {
            return Err(RequestError::NotMap);
        };
        let command = match m.remove("command") {
            None => return Err(RequestError::NoCommand),
            Some(Value::String(s)) => s,
            Some(_) => return Err(RequestError::CommandNotString),
        };
        let service = match m.remove("service") {
            None => None,
            Some(Value::Array(a)) => Some(
                a.into_iter()
                    .map(|s| match s {
                        Value::String(s) => Ok(s),
                        _ => Err(RequestError::BadService),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(RequestError::BadService),
        };
        Ok(Request {
            command,
            arguments: m.remove("arguments"),
            service,
        })
    }

    /// A request without service framing (tests, internal callers).
    pub fn new(command: &str, arguments: Option<Value>) -> Request {
        Request {
            command: command.into(),
            arguments,
            service: None,
        }
    }
}

/// An argument problem; its text names the argument, as Kea's do.
#[derive(Debug, Error, PartialEq)]
pub enum ArgError {
    /// A mandatory argument is absent.
    #[error("missing parameter '{0}'")]
    Missing(&'static str),
    /// Present with the wrong JSON type.
    #[error("invalid type specified for parameter '{0}'")]
    Type(&'static str),
    /// Any other refusal, with Kea's wording.
    #[error("{0}")]
    Other(String),
}

impl From<ArgError> for Answer {
    fn from(e: ArgError) -> Answer {
        Answer::error(e.to_string())
    }
}

/// What command handlers return: `Err` is a result-1 answer.
pub type Handled = Result<Answer, ArgError>;

/// Typed access to an `arguments` map.
pub struct Args<'a>(pub &'a Map<String, Value>);

impl<'a> Args<'a> {
    /// The raw value of `k`, any type.
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        self.0.get(k)
    }
    /// `k` as a string; absent is `None`, another type an error.
    pub fn str(&self, k: &'static str) -> Result<Option<&'a str>, ArgError> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ArgError::Type(k)),
        }
    }
    /// `k` as a string that must be present.
    pub fn req_str(&self, k: &'static str) -> Result<&'a str, ArgError> {
        self.str(k)?.ok_or(ArgError::Missing(k))
    }
    /// `k` as an integer; absent is `None`, another type an error.
    pub fn int(&self, k: &'static str) -> Result<Option<i64>, ArgError> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(ArgError::Type(k)),
            Some(_) => Err(ArgError::Type(k)),
        }
    }
    /// An integer in `u32` range (subnet ids, lifetimes).
    pub fn u32(&self, k: &'static str) -> Result<Option<u32>, ArgError> {
        match self.int(k)? {
            None => Ok(None),
            Some(v) => u32::try_from(v)
                .map(Some)
                .map_err(|_| ArgError::Other(format!("'{k}' is out of range: {v}"))),
        }
    }
    /// `k` as a boolean; absent is `None`, another type an error.
    pub fn bool(&self, k: &'static str) -> Result<Option<bool>, ArgError> {
        match self.0.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ArgError::Type(k)),
        }
    }
}

/// The `arguments` map, or `Err(text)` with the command's own wording.
pub fn map_args<'a>(req: &'a Request, missing: &str) -> Result<Args<'a>, ArgError> {
    match &req.arguments {
        Some(Value::Object(m)) => Ok(Args(m)),
        _ => Err(ArgError::Other(missing.to_owned())),
    }
}
