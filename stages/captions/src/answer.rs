//! Reading the model's answer: the assistant text out of a chat completion, then the captions JSON out of that
//! text, tolerantly (code fences, prose around the JSON, `foreground` as a string or a list, keys in any letter
//! case, `background` as a string or a list), then validated: exactly K non-empty foreground captions and a
//! non-empty background caption. An empty background list means the model saw nothing besides the sounding
//! objects; it is stored as [`NO_BACKGROUND`] so every `ok` row has a background text to embed.

use serde_json::Value;

/// The background caption stored for an answer whose `background` is an empty list.
pub const NO_BACKGROUND: &str = "an image of no other objects";

/// Captions of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Captions {
    pub foreground: Vec<String>,
    pub background: String,
}

/// Why an answer is not usable captions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    #[error("response is not a chat completion: {0}")]
    NotCompletion(String),
    #[error("answer holds no JSON object")]
    NoJson,
    #[error("answer JSON has no `{0}` string")]
    MissingField(&'static str),
    #[error("answer has {got} foreground captions, expected {want}")]
    WrongCount { got: usize, want: usize },
    #[error("answer has an empty caption")]
    EmptyCaption,
}

/// The assistant message text of a chat completion body.
pub fn completion_content(body: &[u8]) -> Result<String, AnswerError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AnswerError::NotCompletion(format!("not JSON: {e}")))?;
    completion_content_of(&value)
}

/// The assistant message text of a parsed chat completion.
pub fn completion_content_of(value: &Value) -> Result<String, AnswerError> {
    value
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AnswerError::NotCompletion("no choices[0].message.content".into()))
}

/// Candidate JSON object texts inside `text`: every balanced `{...}` span, outermost first.
fn json_objects(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut start = 0;
    while let Some(offset) = text[start..].find('{') {
        let open = start + offset;
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut close = None;
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        match close {
            Some(end) => {
                found.push(&text[open..=end]);
                start = end + 1;
            }
            None => start = open + 1,
        }
    }
    found
}

fn caption_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.trim().to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(|s| s.trim().to_string()))
            .collect(),
        _ => None,
    }
}

/// Parses and validates an answer for `k` labels.
pub fn parse_captions(text: &str, k: usize) -> Result<Captions, AnswerError> {
    let mut last_error = AnswerError::NoJson;
    for candidate in json_objects(text) {
        let Ok(value) = serde_json::from_str::<Value>(candidate) else {
            continue;
        };
        match captions_of(&value, k) {
            Ok(c) => return Ok(c),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// The value of `key` in an object, the exact spelling first, else any letter case (`"Foreground"`).
fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).or_else(|| {
        value
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn captions_of(value: &Value, k: usize) -> Result<Captions, AnswerError> {
    let foreground = field(value, "foreground")
        .and_then(caption_list)
        .ok_or(AnswerError::MissingField("foreground"))?;
    let background = match field(value, "background") {
        Some(Value::String(s)) => s.trim().to_string(),
        // Nothing besides the sounding objects.
        Some(Value::Array(items)) if items.is_empty() => NO_BACKGROUND.to_string(),
        // A list of background objects reads as one caption.
        Some(v @ Value::Array(_)) => caption_list(v)
            .ok_or(AnswerError::MissingField("background"))?
            .join(", "),
        _ => return Err(AnswerError::MissingField("background")),
    };
    if foreground.len() != k {
        return Err(AnswerError::WrongCount {
            got: foreground.len(),
            want: k,
        });
    }
    if background.is_empty() || foreground.iter().any(String::is_empty) {
        return Err(AnswerError::EmptyCaption);
    }
    Ok(Captions {
        foreground,
        background,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fenced_and_prose_answers_parse() {
        let plain = r#"{"foreground": "an image of a drum", "background": "an image of a wall"}"#;
        let want = Captions {
            foreground: vec!["an image of a drum".into()],
            background: "an image of a wall".into(),
        };
        assert_eq!(parse_captions(plain, 1).unwrap(), want);
        let fenced = format!("```json\n{plain}\n```");
        assert_eq!(parse_captions(&fenced, 1).unwrap(), want);
        let prose = format!("Sure! Here it is: {plain} Anything else? {{maybe}}");
        assert_eq!(parse_captions(&prose, 1).unwrap(), want);
    }

    #[test]
    fn list_or_string_foreground_and_count_check() {
        let two =
            r#"{"foreground": ["an image of a", "an image of b"], "background": "an image of c"}"#;
        assert_eq!(parse_captions(two, 2).unwrap().foreground.len(), 2);
        assert_eq!(
            parse_captions(two, 1),
            Err(AnswerError::WrongCount { got: 2, want: 1 })
        );
        let one_in_list = r#"{"foreground": ["an image of a"], "background": "x"}"#;
        assert!(parse_captions(one_in_list, 1).is_ok());
        let braces_in_text = r#"{"foreground": "an image of {a}", "background": "b \"}\""}"#;
        assert_eq!(
            parse_captions(braces_in_text, 1).unwrap().foreground,
            vec!["an image of {a}".to_string()]
        );
    }

    #[test]
    fn truncated_and_empty_answers_are_rejected() {
        assert_eq!(
            parse_captions(r#"{"foreground": "an image of a dr"#, 1),
            Err(AnswerError::NoJson)
        );
        assert_eq!(
            parse_captions(r#"{"foreground": " ", "background": "x"}"#, 1),
            Err(AnswerError::EmptyCaption)
        );
        assert_eq!(
            parse_captions(r#"{"foreground": "a"}"#, 1),
            Err(AnswerError::MissingField("background"))
        );
        assert_eq!(parse_captions("no json here", 1), Err(AnswerError::NoJson));
    }

    #[test]
    fn completion_content_is_found() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#;
        assert_eq!(completion_content(body).unwrap(), "hi");
        assert!(matches!(
            completion_content(b"{}"),
            Err(AnswerError::NotCompletion(_))
        ));
    }

    #[test]
    fn keys_in_another_letter_case_are_read() {
        let shouty =
            r#"{"Foreground": ["an image of a", "an image of b"], "BACKGROUND": "an image of c"}"#;
        let got = parse_captions(shouty, 2).unwrap();
        assert_eq!(got.foreground, vec!["an image of a", "an image of b"]);
        assert_eq!(got.background, "an image of c");
        // The exact spelling wins over another case of the same key.
        let both = r#"{"FOREGROUND": "wrong", "foreground": "an image of a", "background": "x"}"#;
        assert_eq!(
            parse_captions(both, 1).unwrap().foreground,
            vec!["an image of a".to_string()]
        );
        assert_eq!(
            parse_captions(r#"{"Foreground": "a", "back ground": "x"}"#, 1),
            Err(AnswerError::MissingField("background"))
        );
    }

    #[test]
    fn an_empty_background_list_is_no_background() {
        let none = r#"{"foreground": "an image of a drum", "background": []}"#;
        assert_eq!(
            parse_captions(none, 1).unwrap(),
            Captions {
                foreground: vec!["an image of a drum".into()],
                background: NO_BACKGROUND.into(),
            }
        );
        let listed = r#"{"foreground": "a", "background": ["an image of a wall", "a lamp"]}"#;
        assert_eq!(
            parse_captions(listed, 1).unwrap().background,
            "an image of a wall, a lamp"
        );
        // An empty string is still an empty caption (a cut-off answer looks like that too).
        assert_eq!(
            parse_captions(r#"{"foreground": "a", "background": " "}"#, 1),
            Err(AnswerError::EmptyCaption)
        );
    }
}
