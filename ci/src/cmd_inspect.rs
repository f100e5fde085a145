//! `gauntlet inspect FILE`: validate a GGUF file and summarise it.
//!
//! Exit codes: 0 valid, 2 invalid file or request (`error: … at offset N (…)` then
//! `help: …` on stderr), 1 I/O error.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gauntlet_engine::gguf::decode::{DECODABLE, decode_f32};
use gauntlet_engine::gguf::{Gguf, MappedGguf, Value};
use serde_json::{Map, Value as Json, json};

use crate::exit;

/// Arrays longer than this are summarised in `--json` output instead of listed.
const MAX_LISTED_ARRAY: u64 = 16;

/// Arguments of `gauntlet inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The GGUF file.
    pub file: PathBuf,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Print decoded values of this tensor instead of the summary.
    #[arg(long, requires = "values")]
    pub tensor: Option<String>,
    /// How many values of `--tensor` to decode.
    #[arg(long, requires = "tensor")]
    pub values: Option<usize>,
}

/// Runs `gauntlet inspect`.
pub fn run(args: InspectArgs) -> ExitCode {
    let mapped = match MappedGguf::open(&args.file) {
        Ok(m) => m,
        Err(e) => return fail(&e.to_string(), &e.help(), e.is_io()),
    };
    let gguf = mapped.gguf();
    if let (Some(name), Some(n)) = (&args.tensor, args.values) {
        return print_values(&gguf, name, n, args.json);
    }
    if args.json {
        println!("{}", summary_json(&gguf));
    } else {
        print!("{}", summary_text(&args.file, &gguf));
    }
    exit::code(exit::OK)
}

fn fail(message: &str, help: &str, io: bool) -> ExitCode {
    eprintln!("error: {message}");
    eprintln!("help: {help}");
    exit::code(if io { exit::IO } else { exit::INVALID })
}

fn print_values(gguf: &Gguf<'_>, name: &str, n: usize, json: bool) -> ExitCode {
    let Some(tensor) = gguf.tensor(name) else {
        return fail(
            &format!("no tensor named \"{name}\" in the file"),
            "run `gauntlet inspect FILE` to list the tensors",
            false,
        );
    };
    let count = n.min(usize::try_from(tensor.n_elements()).unwrap_or(usize::MAX));
    let values = match decode_f32(tensor.ggml_type(), tensor.data(), count) {
        Ok(v) => v,
        Err(e) => {
            let types: Vec<&str> = DECODABLE.iter().map(|t| t.name()).collect();
            return fail(
                &format!("{e} (tensor \"{name}\")"),
                &format!("decodable types: {}", types.join(", ")),
                false,
            );
        }
    };
    if json {
        let values: Vec<Json> = values.iter().map(|&v| f32_json(v)).collect();
        println!(
            "{}",
            json!({"name": name, "type": tensor.ggml_type().name(), "values": values})
        );
    } else {
        let list: Vec<String> = values.iter().map(f32::to_string).collect();
        println!("{name} ({}): {}", tensor.ggml_type(), list.join(" "));
    }
    exit::code(exit::OK)
}

/// f32 → JSON number via its shortest decimal form, so 1e-5 prints as 1e-5, not
/// 9.999999747378752e-6; non-finite values become null.
fn f32_json(v: f32) -> Json {
    format!("{v}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Json::Null, Json::Number)
}

fn value_json(v: &Value<'_>) -> Json {
    match *v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => f32_json(x),
        Value::Bool(x) => json!(x),
        Value::String(s) => json!(s),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        Value::Array(a) if a.len() > MAX_LISTED_ARRAY => json!({
            "type": "array",
            "element_type": a.element_type().name(),
            "len": a.len(),
        }),
        Value::Array(a) => Json::Array(a.iter().map(|e| value_json(&e)).collect()),
    }
}

fn summary_json(gguf: &Gguf<'_>) -> Json {
    let metadata: Map<String, Json> = gguf
        .metadata()
        .map(|(k, v)| (k.to_string(), value_json(&v)))
        .collect();
    let tensors: Vec<Json> = gguf
        .tensor_infos()
        .iter()
        .map(|t| {
            json!({
                "name": t.name(),
                "type": t.ggml_type().name(),
                "type_id": t.ggml_type().id(),
                "dims": t.dims(),
                "offset": t.offset(),
                "size_bytes": t.size_bytes(),
            })
        })
        .collect();
    json!({
        "version": gguf.version(),
        "alignment": gguf.alignment(),
        "tensor_data_offset": gguf.tensor_data_offset(),
        "file_size": gguf.file_len(),
        "architecture": gguf.architecture(),
        "dialect": gguf.dialect().name(),
        "metadata": metadata,
        "tensors": tensors,
    })
}

fn summary_text(path: &std::path::Path, gguf: &Gguf<'_>) -> String {
    let mut out = String::new();
    let infos = gguf.tensor_infos();
    let field = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "{k:<14}{v}");
    };
    field(
        &mut out,
        "file",
        format!("{} ({} bytes)", path.display(), gguf.file_len()),
    );
    field(&mut out, "version", gguf.version().to_string());
    field(&mut out, "alignment", gguf.alignment().to_string());
    field(
        &mut out,
        "architecture",
        gguf.architecture().unwrap_or("(none)").to_string(),
    );
    field(&mut out, "dialect", gguf.dialect().name().to_string());
    field(
        &mut out,
        "metadata",
        format!("{} entries", gguf.metadata_len()),
    );
    field(&mut out, "tensors", infos.len().to_string());
    field(
        &mut out,
        "data offset",
        gguf.tensor_data_offset().to_string(),
    );

    let mut by_type: Vec<(&str, usize, u64)> = Vec::new();
    for t in infos {
        let name = t.ggml_type().name();
        match by_type.iter_mut().find(|(n, _, _)| *n == name) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += t.size_bytes();
            }
            None => by_type.push((name, 1, t.size_bytes())),
        }
    }
    by_type.sort_by_key(|&(_, _, bytes)| std::cmp::Reverse(bytes));
    let _ = writeln!(out, "\nbytes by type");
    for (name, count, bytes) in by_type {
        let _ = writeln!(out, "  {name:<8}{bytes:>16}  ({count} tensors)");
    }

    let name_w = infos
        .iter()
        .map(|t| t.name().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let dims: Vec<String> = infos.iter().map(|t| format!("{:?}", t.dims())).collect();
    let dims_w = dims.iter().map(String::len).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "\n{:<name_w$}  {:<8}  {:<dims_w$}  {:>14}  {:>14}",
        "NAME", "TYPE", "DIMS", "OFFSET", "BYTES"
    );
    for (t, d) in infos.iter().zip(&dims) {
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<8}  {:<dims_w$}  {:>14}  {:>14}",
            t.name(),
            t.ggml_type().name(),
            d,
            t.offset(),
            t.size_bytes()
        );
    }
    out
}
