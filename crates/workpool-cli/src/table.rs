//! Plain aligned text tables and the number formats they use.

use std::fmt::Write;

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
    /// trailing spaces.
    pub(crate) fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = w - cell.chars().count();
                if i == 0 {
                    text.push_str(cell);
                    text.extend(std::iter::repeat(' ').take(pad));
                } else {
                    text.extend(std::iter::repeat(' ').take(pad));
                    text.push_str(cell);
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&self.headers);
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        line(&rule);
        for row in &self.rows {
            line(row);
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
        if i > 0 && (digits.len() - i) % 3 == 0 {
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
--------  -------  -----
workpool   5.12 M  1.00x
rayon       512 k  0.10x
thread     failed
  thread: one OS thread per task
";
        assert_eq!(t.render(), expected);
    }

    #[test]
    fn wide_cells_widen_their_column() {
        let mut t = Table::new("t", &["a", "b"]);
        t.row(vec!["x".into(), "µµµµµ".into()]);
        assert_eq!(t.render(), "t\na      b\n-  -----\nx  µµµµµ\n");
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
