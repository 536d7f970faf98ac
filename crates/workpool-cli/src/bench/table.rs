//! Plain aligned text tables (drawn by comfy-table) and the number formats
//! they use.

use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, ContentLineStyle, LineStyle, TableStyle};
use std::fmt::Write;

/// The look of every table: no borders, a dashed rule under the header, and
/// columns one space apart plus one of padding (see [`Table::render`]).
const STYLE: TableStyle = NOTHING
    .header_lines(ContentLineStyle::none().junction(' '))
    .header_separator(LineStyle::none().fill('-').junction(' '))
    .content_lines(ContentLineStyle::none().junction(' '));

/// A table: a title, a header row, rows of cells, and notes under it. The
/// first column is left-aligned, the others right-aligned (they hold figures).
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) title: String,
    pub(crate) headers: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
    pub(crate) notes: Vec<String>,
}

impl Table {
    pub(crate) fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            ..Table::default()
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The table as text, every line ending in a newline and without
    /// trailing spaces: the title, the header, a dashed rule, the rows (a
    /// short row leaves its last cells blank), then the notes, indented.
    ///
    /// Columns stand two spaces apart: comfy-table's one-space junction plus
    /// one space of padding on the left of every column but the first. The
    /// rule's dashes cover that padding, so each column's run of dashes ends
    /// at its right edge, where its right-aligned figures end.
    pub(crate) fn render(&self) -> String {
        let mut table = comfy_table::Table::new();
        table.load_style(STYLE);
        table.set_header(self.headers.clone());
        for row in &self.rows {
            table.add_row(row.clone());
        }
        for (i, column) in table.column_iter_mut().enumerate() {
            if i == 0 {
                column.set_padding((0, 0));
            } else {
                column.set_padding((1, 0));
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        for line in table.lines() {
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        out
    }
}

/// A figure to three significant digits, never in exponent form:
/// 0.0123, 1.23, 12.3, 123, 12345.
pub(crate) fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        let decimals = (2.0 - a.log10().floor()) as usize;
        format!("{v:.decimals$}")
    }
}

/// A rate with a unit prefix: 17.6 k, 5.12 M.
pub(crate) fn rate(v: f64) -> String {
    if v >= 1e9 {
        format!("{} G", sig3(v / 1e9))
    } else if v >= 1e6 {
        format!("{} M", sig3(v / 1e6))
    } else if v >= 1e3 {
        format!("{} k", sig3(v / 1e3))
    } else {
        sig3(v)
    }
}

/// A count with thousands separators: 1,000,000.
pub(crate) fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio to workpool: 1.00x; `-` when there is none.
pub(crate) fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_are_trimmed() {
        let mut t = Table::new("title", &["impl", "tasks/s", "ratio"]);
        t.row(vec!["workpool".into(), "5.12 M".into(), "1.00x".into()]);
        t.row(vec!["rayon".into(), "512 k".into(), "0.10x".into()]);
        t.row(vec!["thread".into(), "failed".into()]);
        t.note("thread: one OS thread per task");
        let expected = "\
title
impl      tasks/s  ratio
-------- -------- ------
workpool   5.12 M  1.00x
rayon       512 k  0.10x
thread     failed
  thread: one OS thread per task
";
        assert_eq!(t.render(), expected);
        assert!(t.render().lines().all(|l| l == l.trim_end()));
    }

    #[test]
    fn wide_cells_widen_their_column() {
        let mut t = Table::new("t", &["a", "b"]);
        t.row(vec!["x".into(), "µµµµµ".into()]);
        assert_eq!(t.render(), "t\na      b\n- ------\nx  µµµµµ\n");
    }

    #[test]
    fn headers_of_figures_are_right_aligned_too() {
        let mut t = Table::new("t", &["impl", "n"]);
        t.row(vec!["a".into(), "12,345".into()]);
        t.row(vec!["bb".into(), "7".into()]);
        assert_eq!(
            t.render(),
            "t\nimpl       n\n---- -------\na     12,345\nbb         7\n"
        );
    }

    #[test]
    fn a_table_without_rows_keeps_its_header_and_notes() {
        let mut t = Table::new("t", &["impl", "tasks/s"]);
        t.note("nothing ran");
        assert_eq!(
            t.render(),
            "t\nimpl  tasks/s\n---- --------\n  nothing ran\n"
        );
        assert!(Table::default().render().starts_with('\n'));
    }

    #[test]
    fn figures_keep_three_digits() {
        assert_eq!(sig3(0.0), "0");
        assert_eq!(sig3(0.012345), "0.0123");
        assert_eq!(sig3(0.5), "0.500");
        assert_eq!(sig3(1.234), "1.23");
        assert_eq!(sig3(12.34), "12.3");
        assert_eq!(sig3(123.4), "123");
        assert_eq!(sig3(12345.6), "12346");
        assert_eq!(sig3(f64::NAN), "-");
        assert_eq!(rate(17_600.0), "17.6 k");
        assert_eq!(rate(5_123_000.0), "5.12 M");
        assert_eq!(rate(950.0), "950");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(ratio(Some(0.954)), "0.95x");
        assert_eq!(ratio(None), "-");
    }
}
