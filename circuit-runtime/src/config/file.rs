//! Configuration files (feature `toml`): `[defaults]` every breaker
//! inherits, `[profiles.<name>]` bases that may have a `base` of their own,
//! and `[breakers.<name>]` for one breaker by name. A file is read and
//! checked whole, against the option table, before anything is applied:
//! every mistake is reported, each at its line and column, and a file with
//! one changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;

use circuit_spec::{Key, Problem, Raw, Settings, Value};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::FileConfig;

/// A configuration file that could not be read, or that has mistakes. A
/// file with mistakes changes nothing.
///
/// ```
/// # #[cfg(feature = "toml")] {
/// let registry = circuit_runtime::Registry::new();
/// let err = registry.load_toml("[breakers.db]\nfailure_treshold = 3\n").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "<string>:2:1: [breakers.db] unknown key `failure_treshold`: did you mean \
///      `failure_threshold`? write `failure_threshold = 5`",
/// );
/// # }
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why; shared, so the error can go to every reload hook.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// The file's directory could not be watched (feature `watch`).
    #[cfg(feature = "watch")]
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::sync::Arc<notify::Error>,
    },
    /// The file has mistakes; nothing in it was applied.
    #[error("{}", describe(file.as_deref(), problems))]
    Invalid {
        /// The file, or `None` for text loaded from a string.
        file: Option<PathBuf>,
        /// Every mistake, in the order of the file.
        problems: Vec<FileProblem>,
    },
}

impl ConfigFileError {
    /// Every mistake in the file, in its order; none when it could not be
    /// read.
    ///
    /// ```
    /// # #[cfg(feature = "toml")] {
    /// let registry = circuit_runtime::Registry::new();
    /// let err = registry.load_toml("[defaults]\njitter = 2.0\nfailure_threshold = 0\n").unwrap_err();
    /// let lines: Vec<usize> = err.problems().iter().map(|p| p.line).collect();
    /// assert_eq!(lines, [2, 3]);
    /// # }
    /// ```
    pub fn problems(&self) -> &[FileProblem] {
        match self {
            ConfigFileError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }

    /// The text of the file at `path`.
    pub(crate) fn read(path: &std::path::Path) -> Result<String, Self> {
        std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source: std::sync::Arc::new(source),
        })
    }

    pub(crate) fn with_file(self, path: PathBuf) -> Self {
        match self {
            ConfigFileError::Invalid { problems, .. } => ConfigFileError::Invalid {
                file: Some(path),
                problems,
            },
            other => other,
        }
    }
}

fn describe(file: Option<&std::path::Path>, problems: &[FileProblem]) -> String {
    let file = file.map_or_else(|| "<string>".to_owned(), |path| path.display().to_string());
    match problems {
        [one] => format!("{file}:{one}"),
        many => {
            let mut text = format!("{file} has {} mistakes:", many.len());
            for problem in many {
                let _ = write!(text, "\n  {file}:{problem}");
            }
            text
        }
    }
}

/// One mistake in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileProblem {
    /// Its line, from 1.
    pub line: usize,
    /// Its column, in characters, from 1.
    pub column: usize,
    /// The table it is in (`"breakers.orders_db"`), if any.
    pub table: Option<String>,
    /// The key it is about, if any.
    pub key: Option<String>,
    /// What is wrong, and what to write instead.
    pub message: String,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if let Some(table) = &self.table {
            write!(f, "[{table}] ")?;
        }
        f.write_str(&self.message)
    }
}

/// The three tables a file may have.
const TABLES: [&str; 3] = ["defaults", "profiles", "breakers"];

/// One `[defaults]`, `[profiles.x]` or `[breakers.x]` table as written.
struct Section {
    /// `"profiles.database"`.
    table: String,
    /// Where the table's name is, for mistakes about the whole table.
    at: Range<usize>,
    settings: Settings,
    /// Where each option's key and value are.
    keys: HashMap<Key, (Range<usize>, Range<usize>)>,
    /// The profile named by `base`, and where.
    base: Option<(String, Range<usize>)>,
}

/// Reads and checks `source` whole.
pub(crate) fn parse(source: &str) -> Result<FileConfig, Vec<FileProblem>> {
    let mut reader = Reader {
        source,
        problems: Vec::new(),
    };
    let file = reader.read();
    let mut problems = reader.problems;
    if problems.is_empty() {
        Ok(file)
    } else {
        problems.sort_by_key(|problem| (problem.line, problem.column));
        problems.dedup();
        Err(problems)
    }
}

struct Reader<'s> {
    source: &'s str,
    problems: Vec<FileProblem>,
}

/// A table's entries in the order they are written (the parser keeps them
/// sorted by key).
fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(
    &'t Spanned<std::borrow::Cow<'i, str>>,
    &'t Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

impl Reader<'_> {
    fn problem(
        &mut self,
        at: Range<usize>,
        table: Option<&str>,
        key: Option<&str>,
        message: String,
    ) {
        let before = &self.source[..at.start.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        self.problems.push(FileProblem {
            line,
            column,
            table: table.map(str::to_owned),
            key: key.map(str::to_owned),
            message,
        });
    }

    fn read(&mut self) -> FileConfig {
        let document = match DeTable::parse(self.source) {
            Ok(document) => document,
            Err(err) => {
                let at = err.span().unwrap_or(0..0);
                self.problem(
                    at,
                    None,
                    None,
                    format!("not valid TOML: {}", err.message().trim_end()),
                );
                return FileConfig::default();
            }
        };
        let mut defaults = None;
        let mut profiles = Vec::new();
        let mut breakers = Vec::new();
        for (key, value) in in_file_order(document.get_ref()) {
            let name = key.get_ref().as_ref();
            match name {
                "defaults" => {
                    if let Some(table) = self.table_of(value, "defaults", "[defaults]") {
                        defaults =
                            Some(self.section(table, "defaults".to_owned(), key.span(), false));
                    }
                }
                "profiles" | "breakers" => {
                    let Some(table) = self.table_of(value, name, &format!("[{name}.<name>]"))
                    else {
                        continue;
                    };
                    for (entry, value) in in_file_order(table) {
                        let table_name = format!("{name}.{}", quoted(entry.get_ref()));
                        let header = format!("[{table_name}]");
                        if let Some(table) = self.table_of(value, &table_name, &header) {
                            let section = self.section(table, table_name, entry.span(), true);
                            let sections = if name == "profiles" {
                                &mut profiles
                            } else {
                                &mut breakers
                            };
                            sections.push((entry.get_ref().to_string(), section));
                        }
                    }
                }
                other => {
                    let message = match circuit_spec::nearest(other, TABLES.map(|t| (t, t))) {
                        Some(table) => format!("unknown table `{other}`: did you mean `{table}`?"),
                        None => format!(
                            "unknown table `{other}`: a file has [defaults], [profiles.<name>] \
                             and [breakers.<name>]"
                        ),
                    };
                    self.problem(key.span(), None, None, message);
                }
            }
        }
        let defaults = defaults.unwrap_or_else(|| Section {
            table: "defaults".to_owned(),
            at: 0..0,
            settings: Settings::new(),
            keys: HashMap::new(),
            base: None,
        });
        self.resolve(&defaults, &profiles, &breakers)
    }

    /// The table `value` is, or a mistake saying it should be one.
    fn table_of<'t, 'i>(
        &mut self,
        value: &'t Spanned<DeValue<'i>>,
        name: &str,
        write: &str,
    ) -> Option<&'t DeTable<'i>> {
        let table = value.get_ref().as_table();
        if table.is_none() {
            self.problem(
                value.span(),
                None,
                Some(name),
                format!(
                    "`{name}` must be a table, not {}: write `{write}` on a line of its own, \
                     with its options below it",
                    article(value.get_ref().type_str())
                ),
            );
        }
        table
    }

    fn section(
        &mut self,
        table: &DeTable<'_>,
        name: String,
        at: Range<usize>,
        may_have_base: bool,
    ) -> Section {
        let mut section = Section {
            table: name,
            at,
            settings: Settings::new(),
            keys: HashMap::new(),
            base: None,
        };
        for (key, value) in in_file_order(table) {
            let key_name = key.get_ref().as_ref();
            if key_name == "base" && may_have_base {
                match value.get_ref().as_str() {
                    Some(profile) => section.base = Some((profile.to_owned(), value.span())),
                    None => self.problem(
                        value.span(),
                        Some(&section.table),
                        Some("base"),
                        "`base` takes the name of a profile: write `base = \"database\"`"
                            .to_owned(),
                    ),
                }
                continue;
            }
            let Some(option) = Key::from_name(key_name) else {
                let message = unknown_key(key_name, may_have_base);
                self.problem(key.span(), Some(&section.table), Some(key_name), message);
                continue;
            };
            let raw = match value.get_ref() {
                DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
                    .map_or(Raw::Other("an integer too large"), Raw::Integer),
                DeValue::Float(float) => float
                    .as_str()
                    .parse()
                    .map_or(Raw::Other("a number"), Raw::Float),
                DeValue::String(text) => Raw::Str(text),
                other => Raw::Other(article(other.type_str())),
            };
            match option.value_from(raw) {
                Ok(parsed) => {
                    section.settings.set(option, parsed);
                    section.keys.insert(option, (key.span(), value.span()));
                }
                Err(problem) => {
                    let written = self.source[value.span()].to_owned();
                    let message = problem.explain(|_, _| written.clone());
                    self.problem(value.span(), Some(&section.table), Some(key_name), message);
                }
            }
        }
        section
    }

    /// Follows every `base`, then checks each table's options, over the
    /// defaults, against the option table.
    fn resolve(
        &mut self,
        defaults: &Section,
        profiles: &[(String, Section)],
        breakers: &[(String, Section)],
    ) -> FileConfig {
        let by_name: HashMap<&str, &Section> = profiles
            .iter()
            .map(|(name, section)| (name.as_str(), section))
            .collect();
        self.check(&defaults.settings, &[defaults]);
        let mut file = FileConfig {
            defaults: defaults.settings.clone(),
            breakers: BTreeMap::new(),
        };
        for (kind, sections) in [("profiles", profiles), ("breakers", breakers)] {
            for (name, section) in sections {
                let Some(chain) = self.chain(section, &by_name) else {
                    continue;
                };
                let mut own = Settings::new();
                for link in chain.iter().rev() {
                    own = link.settings.layered_over(&own);
                }
                let mut layers = chain.clone();
                layers.push(defaults);
                self.check(&own.layered_over(&defaults.settings), &layers);
                if kind == "breakers" {
                    file.breakers.insert(name.clone(), own);
                }
            }
        }
        file
    }

    /// `section` and the profiles its `base` chain names, nearest first;
    /// `None` (with the mistake recorded) when a base is missing or the
    /// chain comes back on itself.
    fn chain<'a>(
        &mut self,
        section: &'a Section,
        profiles: &HashMap<&str, &'a Section>,
    ) -> Option<Vec<&'a Section>> {
        let mut chain = vec![section];
        let mut current = section;
        while let Some((base, at)) = &current.base {
            let Some(&next) = profiles.get(base.as_str()) else {
                let names: Vec<&str> = {
                    let mut names: Vec<&str> = profiles.keys().copied().collect();
                    names.sort_unstable();
                    names
                };
                let message = match circuit_spec::nearest(base, names.iter().map(|n| (*n, *n))) {
                    Some(near) => format!("`base = \"{base}\"` names no profile: did you mean `{near}`?"),
                    None if names.is_empty() => format!(
                        "`base = \"{base}\"` names no profile: the file has no [profiles.<name>] table"
                    ),
                    None => format!("`base = \"{base}\"` names no profile; the profiles are: {}", names.join(", ")),
                };
                self.problem(at.clone(), Some(&current.table), Some("base"), message);
                return None;
            };
            if chain.iter().any(|seen| std::ptr::eq(*seen, next)) {
                // Reported once, by the cycle's first table in the file, at
                // its own `base`; a table whose chain only runs into a
                // cycle says nothing more.
                let cycle_start = chain.iter().position(|seen| std::ptr::eq(*seen, next));
                let first = chain[cycle_start.unwrap_or(0)..]
                    .iter()
                    .min_by_key(|member| member.at.start)
                    .copied();
                if cycle_start == Some(0) && first.is_some_and(|first| std::ptr::eq(first, section))
                {
                    let mut names: Vec<&str> = chain.iter().map(|s| s.table.as_str()).collect();
                    names.push(&section.table);
                    let message = format!(
                        "`base` goes round in a circle: {}; one of them must not have a `base`",
                        names.join(" -> ")
                    );
                    let at = section
                        .base
                        .as_ref()
                        .map_or(section.at.clone(), |(_, at)| at.clone());
                    self.problem(at, Some(&section.table), Some("base"), message);
                }
                return None;
            }
            chain.push(next);
            current = next;
        }
        Some(chain)
    }

    /// Records every problem of `settings`, each where it is fixed in the
    /// nearest layer that sets its option (a value out of range at the
    /// value, a broken rule at the key), or at the first layer's table.
    fn check(&mut self, settings: &Settings, layers: &[&Section]) {
        let source = self.source;
        let place = |key: Key| {
            layers
                .iter()
                .find_map(|layer| layer.keys.get(&key).map(|spans| (spans.clone(), *layer)))
        };
        // Values as written in the file: `2.0`, `"1m"` with its quotes.
        let written = |key: Key, value: Value| {
            place(key).map_or_else(|| value.to_string(), |((_, at), _)| source[at].to_owned())
        };
        for problem in settings.problems() {
            let key = problem.key();
            let (at, layer) = match (place(key), &problem) {
                (Some(((_, value), layer)), Problem::OutOfRange { .. }) => (value, layer),
                (Some(((key_at, _), layer)), _) => (key_at, layer),
                (None, _) => (layers[0].at.clone(), layers[0]),
            };
            let message = problem.explain(written);
            let table = layer.table.clone();
            self.problem(at, Some(&table), Some(key.name()), message);
        }
    }
}

fn unknown_key(name: &str, may_have_base: bool) -> String {
    if may_have_base {
        circuit_spec::unknown_key(name, &[("base", "\"database\"")])
    } else if name == "base" {
        "`base` is for profiles and breakers: [defaults] are what everything is based on".to_owned()
    } else {
        circuit_spec::unknown_key(name, &[])
    }
}

/// A table name as a header writes it: quoted when it is not a bare key.
fn quoted(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn article(type_name: &'static str) -> &'static str {
    match type_name {
        "string" => "a string",
        "integer" => "an integer",
        "float" => "a number",
        "boolean" => "a boolean",
        "datetime" => "a date",
        "array" => "an array",
        "table" => "a table",
        _ => "a value of another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(source: &str) -> Vec<String> {
        match parse(source) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_breakers_options_are_its_own_over_its_base_chain() {
        let file = parse(
            "[profiles.base]\nfailure_threshold = 5\njitter = 0.1\n\
             [profiles.database]\nbase = \"base\"\nfailure_threshold = 3\n\
             [breakers.db]\nbase = \"database\"\njitter = 0.2\n",
        )
        .unwrap();
        let db = &file.breakers["db"];
        assert_eq!(db.get(Key::FailureThreshold), Some(Value::Count(3)));
        assert_eq!(db.get(Key::Jitter), Some(Value::Number(0.2)));
    }

    #[test]
    fn a_defaults_mistake_is_reported_once() {
        let found = problems("[defaults]\njitter = 2.0\n[breakers.a]\n[breakers.b]\n");
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
