//! Pre-parsed policy strings: IAM-style globs with policy variables, compiled once per policy and matched per
//! request without allocating.
//!
//! Reference 4.3: `*` matches any run of characters *including* `/`, `?` exactly one character; MQTT `+` and `#`
//! are ordinary literal characters; `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and `$`.
//! Reference 4.4: `${iot:...}` variables are replaced by the connection's values. A variable that has no value stays
//! literal `${...}` text, as AWS documents for certificate variables ("leaving the `${policy-variable}` text in
//! the policy document"), so the statement in practice matches no real resource. A substituted value is matched
//! as literal text, never as a wildcard, so a client id `*` cannot widen a `${iot:ClientId}` resource
//! (safer reading; AWS does not document this case).

use crate::context::ConnectionContext;
use crate::variables::PolicyVariable;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Literal(Box<str>),
    AnyChar,
    Variable {
        variable: PolicyVariable,
        raw: Box<str>,
    },
}

/// Whether `*` and `?` are wildcards (Action, Resource, `StringLike`) or plain characters (`StringEquals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wildcards {
    Glob,
    Literal,
}

/// A compiled policy string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    raw: String,
    /// The pieces between `*` wildcards: `a*b*c` is `[a, b, c]`; `*` alone is `[[], []]`.
    segments: Vec<Vec<Atom>>,
    ignore_ascii_case: bool,
}

/// What compiling a string found besides the pattern itself.
#[derive(Debug, Default)]
pub(crate) struct CompileNotes {
    /// `${name}` texts whose name is not a documented variable (kept literal).
    pub unknown_variables: Vec<String>,
}

impl Pattern {
    pub(crate) fn compile(
        raw: &str,
        variables_enabled: bool,
        wildcards: Wildcards,
        ignore_ascii_case: bool,
        notes: &mut CompileNotes,
    ) -> Pattern {
        let mut segments: Vec<Vec<Atom>> = vec![Vec::new()];
        let mut literal = String::new();
        let flush = |literal: &mut String, segments: &mut Vec<Vec<Atom>>| {
            if !literal.is_empty() {
                let text = std::mem::take(literal);
                let text = if ignore_ascii_case {
                    text.to_ascii_lowercase()
                } else {
                    text
                };
                if let Some(segment) = segments.last_mut() {
                    segment.push(Atom::Literal(text.into_boxed_str()));
                }
            }
        };
        let mut rest = raw;
        while let Some(character) = rest.chars().next() {
            if variables_enabled
                && rest.starts_with("${")
                && let Some(close) = rest.find('}')
            {
                let name = &rest[2..close];
                let text = &rest[..=close];
                match name {
                    "*" | "?" | "$" => literal.push_str(name),
                    _ => match PolicyVariable::parse(name) {
                        Some(variable) => {
                            flush(&mut literal, &mut segments);
                            if let Some(segment) = segments.last_mut() {
                                segment.push(Atom::Variable {
                                    variable,
                                    raw: text.into(),
                                });
                            }
                        }
                        None => {
                            notes.unknown_variables.push(text.to_owned());
                            literal.push_str(text);
                        }
                    },
                }
                rest = &rest[close + 1..];
                continue;
            }
            match (character, wildcards) {
                ('*', Wildcards::Glob) => {
                    flush(&mut literal, &mut segments);
                    segments.push(Vec::new());
                }
                ('?', Wildcards::Glob) => {
                    flush(&mut literal, &mut segments);
                    if let Some(segment) = segments.last_mut() {
                        segment.push(Atom::AnyChar);
                    }
                }
                _ => literal.push(character),
            }
            rest = &rest[character.len_utf8()..];
        }
        flush(&mut literal, &mut segments);
        Pattern {
            raw: raw.to_owned(),
            segments,
            ignore_ascii_case,
        }
    }

    /// A `Resource`-style pattern: `*`/`?` wildcards and policy variables (Version 2012-10-17), case-sensitive.
    pub fn resource(raw: &str) -> Pattern {
        Pattern::compile(
            raw,
            true,
            Wildcards::Glob,
            false,
            &mut CompileNotes::default(),
        )
    }

    /// The string as written in the policy.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the pattern has a `*` or `?` wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.segments.len() > 1
            || self
                .segments
                .iter()
                .flatten()
                .any(|atom| matches!(atom, Atom::AnyChar))
    }

    /// The policy variables the pattern uses.
    pub fn variables(&self) -> impl Iterator<Item = &PolicyVariable> {
        self.segments
            .iter()
            .flatten()
            .filter_map(|atom| match atom {
                Atom::Variable { variable, .. } => Some(variable),
                _ => None,
            })
    }

    /// The literal text before the first wildcard or variable (used by the audit to build probe names).
    pub fn literal_prefix(&self) -> String {
        let mut prefix = String::new();
        for atom in self.segments.first().into_iter().flatten() {
            match atom {
                Atom::Literal(text) => prefix.push_str(text),
                _ => break,
            }
        }
        prefix
    }

    /// A string this pattern matches for `context`: variables resolved, each `*` replaced by `star_fill`, each `?`
    /// by `z` (the audit uses it to build probe resources inside a statement's scope).
    pub fn example(&self, context: &ConnectionContext, star_fill: &str) -> String {
        let mut example = String::new();
        for (index, segment) in self.segments.iter().enumerate() {
            if index > 0 {
                example.push_str(star_fill);
            }
            for atom in segment {
                match atom {
                    Atom::Literal(text) => example.push_str(text),
                    Atom::AnyChar => example.push('z'),
                    Atom::Variable { variable, raw } => {
                        example.push_str(variable.resolve_for_resource(context).unwrap_or(raw));
                    }
                }
            }
        }
        example
    }

    /// Whether `subject` matches, with variables resolved against `context`.
    pub fn matches(&self, subject: &str, context: &ConnectionContext) -> bool {
        let (Some(first), Some(last_index)) =
            (self.segments.first(), self.segments.len().checked_sub(1))
        else {
            return false;
        };
        let Some(mut position) = self.match_at(first, subject, 0, context) else {
            return false;
        };
        if last_index == 0 {
            return position == subject.len();
        }
        for segment in &self.segments[1..last_index] {
            if segment.is_empty() {
                continue;
            }
            // Leftmost match is enough: every segment has a fixed length once variables are resolved, so an
            // earlier end only leaves more room for the rest.
            let found = (position..=subject.len())
                .filter(|start| subject.is_char_boundary(*start))
                .find_map(|start| self.match_at(segment, subject, start, context));
            match found {
                Some(end) => position = end,
                None => return false,
            }
        }
        let last = &self.segments[last_index];
        if last.is_empty() {
            return true;
        }
        if let Some(length) = fixed_byte_length(last, context) {
            // The common case (no `?` in the tail): the tail can only start at one place.
            return subject.len() >= position + length
                && subject.is_char_boundary(subject.len() - length)
                && self.match_at(last, subject, subject.len() - length, context)
                    == Some(subject.len());
        }
        (position..=subject.len())
            .filter(|start| subject.is_char_boundary(*start))
            .any(|start| self.match_at(last, subject, start, context) == Some(subject.len()))
    }

    fn match_at(
        &self,
        atoms: &[Atom],
        subject: &str,
        start: usize,
        context: &ConnectionContext,
    ) -> Option<usize> {
        let mut position = start;
        for atom in atoms {
            match atom {
                Atom::Literal(text) => {
                    position = self.match_text(subject, position, text)?;
                }
                Atom::AnyChar => {
                    let character = subject.get(position..)?.chars().next()?;
                    position += character.len_utf8();
                }
                Atom::Variable { variable, raw } => {
                    let text = variable.resolve_for_resource(context).unwrap_or(raw);
                    position = self.match_text(subject, position, text)?;
                }
            }
        }
        Some(position)
    }

    fn match_text(&self, subject: &str, position: usize, text: &str) -> Option<usize> {
        let end = position.checked_add(text.len())?;
        let candidate = subject.as_bytes().get(position..end)?;
        let equal = if self.ignore_ascii_case {
            candidate.eq_ignore_ascii_case(text.as_bytes())
        } else {
            candidate == text.as_bytes()
        };
        equal.then_some(end)
    }
}

fn fixed_byte_length(atoms: &[Atom], context: &ConnectionContext) -> Option<usize> {
    atoms.iter().try_fold(0usize, |total, atom| match atom {
        Atom::Literal(text) => Some(total + text.len()),
        Atom::AnyChar => None,
        Atom::Variable { variable, raw } => Some(
            total
                + variable
                    .resolve_for_resource(context)
                    .map_or(raw.len(), str::len),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(raw: &str) -> Pattern {
        Pattern::compile(
            raw,
            true,
            Wildcards::Glob,
            false,
            &mut CompileNotes::default(),
        )
    }

    fn plain() -> ConnectionContext {
        ConnectionContext::new("client-1")
    }

    #[test]
    fn star_matches_any_run_including_slashes() {
        let pattern = glob("topic/data/*");
        assert!(pattern.matches("topic/data/a", &plain()));
        assert!(pattern.matches("topic/data/a/b/c", &plain()));
        assert!(pattern.matches("topic/data/", &plain()));
        assert!(!pattern.matches("topic/dat", &plain()));
        assert!(glob("*").matches("", &plain()));
        assert!(glob("*").matches("anything/at/all", &plain()));
        assert!(glob("a*b*c").matches("a//b/x/c", &plain()));
        assert!(glob("a*b*c").matches("abc", &plain()));
        assert!(!glob("a*b*c").matches("acb", &plain()));
        assert!(glob("*/shadow/*").matches("x/shadow/y/shadow/z", &plain()));
        assert!(glob("a*aab").matches("aaaab", &plain()));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        let pattern = glob("topic/room-??");
        assert!(pattern.matches("topic/room-12", &plain()));
        assert!(!pattern.matches("topic/room-1", &plain()));
        assert!(!pattern.matches("topic/room-123", &plain()));
        assert!(pattern.matches("topic/room-é1", &plain()));
        assert!(glob("a*?").matches("ab", &plain()));
        assert!(!glob("a*?").matches("a", &plain()));
        assert!(glob("*?x").matches("yx", &plain()));
    }

    #[test]
    fn mqtt_wildcards_are_literal() {
        let pattern = glob("topicfilter/some/+/topic");
        assert!(pattern.matches("topicfilter/some/+/topic", &plain()));
        assert!(!pattern.matches("topicfilter/some/x/topic", &plain()));
        let hash = glob("topicfilter/a/#");
        assert!(hash.matches("topicfilter/a/#", &plain()));
        assert!(!hash.matches("topicfilter/a/b", &plain()));
        // reference 4.3: a `*` pattern matches the literal `+` filter and a concrete level alike
        let star = glob("topicfilter/some/*/topic");
        assert!(star.matches("topicfilter/some/x/topic", &plain()));
        assert!(star.matches("topicfilter/some/+/topic", &plain()));
    }

    #[test]
    fn escaped_special_characters_are_literal() {
        let pattern = glob("topic/${*}/${?}/${$}x");
        assert!(pattern.matches("topic/*/?/$x", &plain()));
        assert!(!pattern.matches("topic/a/b/$x", &plain()));
    }

    #[test]
    fn variables_resolve_and_values_match_literally() {
        let pattern = glob("topic/data/${iot:ClientId}/*");
        assert!(pattern.matches("topic/data/client-1/t", &plain()));
        assert!(!pattern.matches("topic/data/client-2/t", &plain()));
        let star_client = ConnectionContext::new("*");
        assert!(pattern.matches("topic/data/*/t", &star_client));
        assert!(!pattern.matches("topic/data/other/t", &star_client));
    }

    #[test]
    fn unresolved_variables_stay_literal_text() {
        let pattern = glob("topic/${iot:Connection.Thing.ThingName}/x");
        let no_thing = plain();
        assert!(!pattern.matches("topic/client-1/x", &no_thing));
        assert!(pattern.matches("topic/${iot:Connection.Thing.ThingName}/x", &no_thing));
    }

    #[test]
    fn unknown_variables_are_reported_and_kept_literal() {
        let mut notes = CompileNotes::default();
        let pattern = Pattern::compile(
            "topic/${iot:Connection.Thing.Name}",
            true,
            Wildcards::Glob,
            false,
            &mut notes,
        );
        assert_eq!(
            notes.unknown_variables,
            vec!["${iot:Connection.Thing.Name}"]
        );
        assert!(pattern.matches("topic/${iot:Connection.Thing.Name}", &plain()));
    }

    #[test]
    fn variables_are_literal_text_without_the_2012_version() {
        let pattern = Pattern::compile(
            "topic/${iot:ClientId}",
            false,
            Wildcards::Glob,
            false,
            &mut CompileNotes::default(),
        );
        assert!(!pattern.matches("topic/client-1", &plain()));
        assert!(pattern.matches("topic/${iot:ClientId}", &plain()));
    }

    #[test]
    fn case_insensitive_patterns_for_actions() {
        let pattern = Pattern::compile(
            "iot:Pub*",
            false,
            Wildcards::Glob,
            true,
            &mut CompileNotes::default(),
        );
        assert!(pattern.matches("iot:Publish", &plain()));
        assert!(pattern.matches("IOT:PUBLISH", &plain()));
        assert!(!pattern.matches("iot:Subscribe", &plain()));
    }

    #[test]
    fn literal_mode_treats_wildcards_as_text() {
        let pattern = Pattern::compile(
            "a*b",
            true,
            Wildcards::Literal,
            false,
            &mut CompileNotes::default(),
        );
        assert!(pattern.matches("a*b", &plain()));
        assert!(!pattern.matches("axb", &plain()));
        assert!(!pattern.has_wildcards());
        assert_eq!(glob("topic/a/b*").literal_prefix(), "topic/a/b");
        let scoped = glob("topic/${iot:ClientId}/r?/*");
        let example = scoped.example(&plain(), "probe");
        assert_eq!(example, "topic/client-1/rz/probe");
        assert!(scoped.matches(&example, &plain()));
    }
}
