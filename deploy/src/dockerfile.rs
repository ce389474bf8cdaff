//! The Dockerfile as data: its stages and their instructions, enough to read what the image
//! builds with and how it runs (environment, entry point, health check, user).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context as _, bail};

/// One instruction, its keyword upper-cased and its continuation lines joined.
#[derive(Debug, Clone)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

/// A `RUN [--option=…]… command` step.
#[derive(Debug, Clone)]
pub struct RunStep<'a> {
    /// The options without their leading `--`, e.g. `mount=type=cache,target=/src/target`.
    pub options: Vec<&'a str>,
    pub command: &'a str,
}

impl<'a> RunStep<'a> {
    /// The targets of the step's cache mounts.
    pub fn cache_mounts(&self) -> Vec<&str> {
        self.options
            .iter()
            .filter_map(|option| option.strip_prefix("mount="))
            .filter(|mount| mount.split(',').any(|part| part == "type=cache"))
            .filter_map(|mount| mount.split(',').find_map(|part| part.strip_prefix("target=")))
            .collect()
    }

    /// The command without the variable assignments in front of it (`A=1 B="$(x)" cargo …` is
    /// `cargo …`): what the step runs, whatever environment it runs it in.
    pub fn program(&self) -> &'a str {
        let mut rest = self.command.trim_start();
        loop {
            let name_length = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            if name_length == 0 || !rest[name_length..].starts_with('=') {
                return rest;
            }
            // The value runs to the first blank outside double quotes.
            let mut quoted = false;
            let value = &rest[name_length + 1..];
            let end = value
                .char_indices()
                .find(|&(_, c)| {
                    quoted ^= c == '"';
                    !quoted && c.is_whitespace()
                })
                .map_or(value.len(), |(index, _)| index);
            rest = value[end..].trim_start();
        }
    }
}

/// A `FROM ... [AS name]` stage.
#[derive(Debug)]
pub struct Stage {
    pub base: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// The whole file.
#[derive(Debug)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM`, usable in `FROM` lines.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    /// Parses the text of a Dockerfile.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut file = Self { global_args: Vec::new(), stages: Vec::new() };
        for instruction in instructions(text) {
            if instruction.keyword == "FROM" {
                let words: Vec<&str> = instruction.args.split_whitespace().collect();
                let (base, name) = match words.as_slice() {
                    [base] => (*base, None),
                    [base, as_, name] if as_.eq_ignore_ascii_case("as") => (*base, Some((*name).to_owned())),
                    _ => bail!("cannot read FROM {}", instruction.args),
                };
                file.stages.push(Stage { base: base.to_owned(), name, instructions: Vec::new() });
            } else if let Some(stage) = file.stages.last_mut() {
                stage.instructions.push(instruction);
            } else if instruction.keyword == "ARG" {
                file.global_args.push(instruction);
            } else {
                bail!("{} before the first FROM", instruction.keyword);
            }
        }
        Ok(file)
    }

    /// The stage called `name`.
    pub fn stage(&self, name: &str) -> anyhow::Result<&Stage> {
        self.stages.iter().find(|stage| stage.name.as_deref() == Some(name)).with_context(|| format!("no stage {name}"))
    }

    /// The default of a global `ARG name=default`.
    pub fn global_arg(&self, name: &str) -> Option<&str> {
        self.global_args.iter().find_map(|arg| arg.args.strip_prefix(name)?.strip_prefix('='))
    }
}

impl Stage {
    /// The arguments of each instruction with `keyword`, in order.
    pub fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.instructions.iter().filter(move |i| i.keyword == keyword).map(|i| i.args.as_str())
    }

    /// The last instruction with `keyword` (the one that takes effect).
    pub fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last()
    }

    /// The `RUN` steps: each one's command, and the `--mount=…` (and other `--flag=…`) options
    /// before it.
    pub fn runs(&self) -> impl Iterator<Item = RunStep<'_>> {
        self.all("RUN").map(|args| {
            let mut options = Vec::new();
            let mut rest = args;
            while let Some(flagged) = rest.strip_prefix("--") {
                let (option, after) = flagged.split_once(char::is_whitespace).unwrap_or((flagged, ""));
                options.push(option);
                rest = after.trim_start();
            }
            RunStep { options, command: rest }
        })
    }

    /// Every `ENV name=value` of the stage.
    pub fn env(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        for args in self.all("ENV") {
            for pair in args.split_whitespace() {
                let (name, value) = pair.split_once('=').with_context(|| format!("ENV {args}: use name=value"))?;
                env.insert(name.to_owned(), value.trim_matches('"').to_owned());
            }
        }
        Ok(env)
    }

    /// The exec form (`["program", "arg"]`) of the last `keyword` instruction.
    pub fn exec_form(&self, keyword: &str) -> anyhow::Result<Vec<String>> {
        let args = self.last(keyword).with_context(|| format!("no {keyword}"))?;
        serde_json::from_str(args).with_context(|| format!("{keyword} is not in exec form: {args}"))
    }

    /// The command of the last `HEALTHCHECK [options] CMD [...]`, in exec form.
    pub fn health_check(&self) -> anyhow::Result<Vec<String>> {
        let args = self.last("HEALTHCHECK").context("no HEALTHCHECK")?;
        let (_, command) = args.split_once("CMD ").with_context(|| format!("HEALTHCHECK without CMD: {args}"))?;
        serde_json::from_str(command.trim()).with_context(|| format!("HEALTHCHECK CMD is not in exec form: {command}"))
    }
}

/// Instructions with comments and blank lines dropped and `\` continuations joined.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut joined: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            Instruction { keyword: keyword.to_ascii_uppercase(), args: args.trim().to_owned() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment\nARG V=1\nFROM rust:${V} AS build\nRUN a \\\n    && b\n\nFROM debian AS run\n\
                        ENV A=1 \\\n    B=\"two\"\nHEALTHCHECK --interval=5s CMD [\"x\", \"--check\"]\nENTRYPOINT [\"x\"]\n";

    #[test]
    fn stages_instructions_and_forms_are_read() {
        let file = Dockerfile::parse(TEXT).expect("parses");
        assert_eq!(file.global_arg("V"), Some("1"));
        assert_eq!(file.stages.len(), 2);
        let build = file.stage("build").expect("build stage");
        assert_eq!(build.last("RUN"), Some("a && b"));
        let run = file.stage("run").expect("run stage");
        let env = run.env().expect("env");
        assert_eq!((env["A"].as_str(), env["B"].as_str()), ("1", "two"));
        assert_eq!(run.health_check().expect("health check"), ["x", "--check"]);
        assert_eq!(run.exec_form("ENTRYPOINT").expect("entry point"), ["x"]);
    }

    #[test]
    fn a_run_step_s_options_are_told_from_its_command() {
        let file = Dockerfile::parse(
            "FROM rust AS build\nRUN --mount=type=cache,id=r,target=/r,sharing=locked \\\n    --mount=type=bind,target=/b \\\n    --network=none cargo build\n",
        )
        .expect("parses");
        let step = file.stage("build").expect("build stage").runs().next().expect("a RUN");
        assert_eq!(step.command, "cargo build");
        assert_eq!(step.options.len(), 3);
        assert_eq!(step.cache_mounts(), ["/r"]);
    }

    #[test]
    fn a_run_step_s_program_follows_its_variable_assignments() {
        let step = |command| RunStep { options: Vec::new(), command };
        assert_eq!(step("A=1 B=\"/usr/$(x -y)\" C=/c cargo build --x=1").program(), "cargo build --x=1");
        assert_eq!(step("cargo build A=1").program(), "cargo build A=1");
        assert_eq!(step("A=").program(), "");
    }
}
