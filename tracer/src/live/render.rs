//! Draws the view: the header, the tabs, the current tab's table and the
//! keys' line. Computes nothing: what it draws comes from `view`.

use ratatui::{
    Frame,
    layout::{Alignment, Constraint, Layout},
    style::{Modifier, Style},
    text::Line,
    widgets::{Cell, Paragraph, Row, Table, Tabs},
};

use super::view::{self, TABS, View};
use crate::analysis::live_model::Snapshot;

/// One frame of the view; `snapshot` is `None` before the first refresh.
pub fn draw(frame: &mut Frame, snapshot: Option<&Snapshot>, view: &View) {
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let reversed = Style::default().add_modifier(Modifier::REVERSED);
    let Some(snapshot) = snapshot else {
        frame.render_widget(
            Paragraph::new("tracer: tracing; the first figures come after a refresh"),
            header,
        );
        return;
    };
    frame.render_widget(
        Paragraph::new(view::header(snapshot, view)).style(reversed),
        header,
    );
    let selected = TABS.iter().position(|&t| t == view.tab).unwrap_or(0);
    frame.render_widget(
        Tabs::new(TABS.iter().map(|t| t.title()))
            .select(selected)
            .highlight_style(reversed)
            .divider("|")
            .padding("", ""),
        tabs,
    );
    let table = view::table(snapshot, view, body.width);
    if table.rows.is_empty() {
        frame.render_widget(Paragraph::new(table.empty.as_str()), body);
    } else {
        let align = |right: bool| {
            if right {
                Alignment::Right
            } else {
                Alignment::Left
            }
        };
        let widths = table.columns.iter().map(|c| match c.width {
            Some(width) => Constraint::Length(width),
            None => Constraint::Fill(1),
        });
        let headings = Row::new(
            table
                .columns
                .iter()
                .map(|c| Cell::from(Line::from(c.heading).alignment(align(c.right)))),
        )
        .style(Style::default().add_modifier(Modifier::BOLD));
        let rows =
            table.rows.iter().map(|cells| {
                Row::new(cells.iter().zip(&table.columns).map(|(cell, c)| {
                    Cell::from(Line::from(cell.as_str()).alignment(align(c.right)))
                }))
            });
        frame.render_widget(
            Table::new(rows, widths).header(headings).column_spacing(1),
            body,
        );
    }
    frame.render_widget(Paragraph::new(view::footer(view)).style(reversed), footer);
}
