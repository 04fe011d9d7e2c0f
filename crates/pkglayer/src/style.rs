//! How `error:`, `warning:` and `hint:` look: bold and coloured like clap's own messages when
//! stderr is a terminal (and `NO_COLOR` is not set), plain otherwise. Log lines of the library
//! (`tracing`) get the same labels, so a warning looks the same wherever it comes from.

use std::fmt;
use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

fn coloured() -> bool {
    static COLOURED: OnceLock<bool> = OnceLock::new();
    *COLOURED.get_or_init(|| {
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    })
}

/// `label` in bold ANSI colour `colour` (31 red, 33 yellow, 32 green) on a terminal.
fn paint(label: &'static str, colour: u8) -> String {
    if coloured() {
        format!("\x1b[1;{colour}m{label}\x1b[0m")
    } else {
        label.to_string()
    }
}

/// `error:`
pub fn error() -> String {
    paint("error:", 31)
}

/// `warning:`
pub fn warning() -> String {
    paint("warning:", 33)
}

/// `hint:`
pub fn hint() -> String {
    paint("hint:", 32)
}

/// Log lines as `warning: message`, `info: message`: the level as a label, nothing else.
pub struct Labelled;

impl<S, N> FormatEvent<S, N> for Labelled
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let label = match *event.metadata().level() {
            Level::ERROR => error(),
            Level::WARN => warning(),
            Level::INFO => "info:".to_string(),
            Level::DEBUG => "debug:".to_string(),
            Level::TRACE => "trace:".to_string(),
        };
        write!(writer, "{label} ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
