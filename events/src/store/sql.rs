//! SQL of the row operations, shared by the SQLite and PostgreSQL adapters.
//!
//! Both take numbered parameters (`?1` / `$1`), so one generator serves both dialects;
//! they differ in how a document is merged and built. Consecutive inserts into the same
//! table with the same columns become one multi-row statement (a forecast's points).

use crate::projections::{DocQuery, OpKind, RowOp, SHADOW_SUFFIX, Val, docless_columns};

/// The database a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a statement parameter.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Val(Val),
    Doc(serde_json::Value),
}

/// One statement and its arguments, in parameter order.
#[derive(Debug)]
pub(crate) struct Stmt {
    pub sql: String,
    pub args: Vec<Arg>,
}

/// At most this many rows in one multi-row insert (well under both databases' parameter limits).
const ROWS_PER_INSERT: usize = 200;

impl Dialect {
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn merge_doc(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("doc = json_patch(doc, ?{n})"),
            Dialect::Postgres => format!("doc = doc || ${n}"),
        }
    }

    /// The expression that reads a row's document (built from columns for a doc-less table).
    pub fn doc_expr(self, table: &str) -> String {
        let Some(cols) = docless_columns(table) else {
            return "doc".into();
        };
        let pairs: Vec<String> = cols.iter().map(|c| format!("'{c}', {c}")).collect();
        match self {
            Dialect::Sqlite => format!("json_object({}) AS doc", pairs.join(", ")),
            Dialect::Postgres => format!("jsonb_build_object({}) AS doc", pairs.join(", ")),
        }
    }

    /// The statements of a list of row operations, in order, for the live tables or their
    /// shadow copies.
    pub fn statements(self, ops: &[RowOp], shadow: bool) -> Vec<Stmt> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            let op = &ops[i];
            if op.kind == OpKind::Patch {
                out.push(self.patch(op, shadow));
                i += 1;
                continue;
            }
            let same = ops[i..]
                .iter()
                .take(ROWS_PER_INSERT)
                .take_while(|o| o.kind == op.kind && o.table == op.table && same_columns(o, op))
                .count();
            // An upsert cannot touch one row twice in one statement: one row per Replace.
            let n = if op.kind == OpKind::Replace { 1 } else { same };
            out.push(self.insert(&ops[i..i + n], shadow));
            i += n;
        }
        out
    }

    fn insert(self, ops: &[RowOp], shadow: bool) -> Stmt {
        let op = &ops[0];
        let with_doc = !op.doc.is_null();
        let mut names: Vec<&str> = op.key.iter().chain(&op.cols).map(|(c, _)| *c).collect();
        if with_doc {
            names.push("doc");
        }
        let mut args = Vec::with_capacity(ops.len() * names.len());
        let mut tuples = Vec::with_capacity(ops.len());
        for o in ops {
            let start = args.len();
            args.extend(o.key.iter().chain(&o.cols).map(|(_, v)| Arg::Val(v.clone())));
            if with_doc {
                args.push(Arg::Doc(o.doc.clone()));
            }
            let params: Vec<String> = (start + 1..=args.len()).map(|n| self.param(n)).collect();
            tuples.push(format!("({})", params.join(", ")));
        }
        let keys: Vec<&str> = op.key.iter().map(|(c, _)| *c).collect();
        let conflict = match op.kind {
            OpKind::Insert => "DO NOTHING".to_string(),
            _ => {
                let sets: Vec<String> = names[keys.len()..]
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                format!("DO UPDATE SET {}", sets.join(", "))
            }
        };
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) {conflict}",
            table_name(op.table, shadow),
            names.join(", "),
            tuples.join(", "),
            keys.join(", "),
        );
        Stmt { sql, args }
    }

    fn patch(self, op: &RowOp, shadow: bool) -> Stmt {
        let mut args: Vec<Arg> = op.cols.iter().map(|(_, v)| Arg::Val(v.clone())).collect();
        let mut sets: Vec<String> = op
            .cols
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = {}", self.param(i + 1)))
            .collect();
        if !op.doc.is_null() {
            args.push(Arg::Doc(op.doc.clone()));
            sets.push(self.merge_doc(args.len()));
        }
        let wheres: Vec<String> = op
            .key
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = {}", self.param(args.len() + i + 1)))
            .collect();
        args.extend(op.key.iter().map(|(_, v)| Arg::Val(v.clone())));
        let sql = format!(
            "UPDATE {} SET {} WHERE {}",
            table_name(op.table, shadow),
            sets.join(", "),
            wheres.join(" AND ")
        );
        Stmt { sql, args }
    }

    /// The statement of a document query.
    pub fn query(self, q: &DocQuery) -> Stmt {
        let wheres: Vec<String> = q
            .filters
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = {}", self.param(i + 1)))
            .collect();
        let n = q.filters.len();
        let sql = format!(
            "SELECT {} FROM {} {} ORDER BY {} {} LIMIT {} OFFSET {}",
            self.doc_expr(q.table),
            q.table,
            if wheres.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", wheres.join(" AND "))
            },
            q.order_by,
            if q.descending { "DESC" } else { "ASC" },
            self.param(n + 1),
            self.param(n + 2),
        );
        let mut args: Vec<Arg> = q.filters.iter().map(|(_, v)| Arg::Val(v.clone())).collect();
        args.extend([Arg::Val(Val::Int(q.limit)), Arg::Val(Val::Int(q.offset))]);
        Stmt { sql, args }
    }
}

fn same_columns(a: &RowOp, b: &RowOp) -> bool {
    a.doc.is_null() == b.doc.is_null()
        && a.key.len() == b.key.len()
        && a.cols.len() == b.cols.len()
        && a.key.iter().zip(&b.key).all(|(x, y)| x.0 == y.0)
        && a.cols.iter().zip(&b.cols).all(|(x, y)| x.0 == y.0)
}

/// A read-model table's name, or its shadow copy's.
pub(crate) fn table_name(table: &str, shadow: bool) -> String {
    if shadow {
        format!("{table}{SHADOW_SUFFIX}")
    } else {
        table.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn point(at: i64) -> RowOp {
        RowOp {
            kind: OpKind::Insert,
            table: "prediction_points",
            key: vec![("service", Val::Text("s".into())), ("at", Val::Int(at))],
            cols: vec![("p50", Val::Float(1.0))],
            doc: serde_json::Value::Null,
        }
    }

    #[test]
    fn consecutive_inserts_share_one_statement() {
        let patch = RowOp {
            kind: OpKind::Patch,
            table: "t",
            key: vec![("id", Val::Int(1))],
            cols: vec![("status", Val::Text("x".into()))],
            doc: json!({"status": "x"}),
        };
        let ops = vec![point(1), point(2), point(3), patch, point(4)];
        let s = Dialect::Postgres.statements(&ops, false);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0].sql,
            "INSERT INTO prediction_points (service, at, p50) VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9) \
             ON CONFLICT (service, at) DO NOTHING"
        );
        assert_eq!(s[0].args.len(), 9);
        assert_eq!(s[1].sql, "UPDATE t SET status = $1, doc = doc || $2 WHERE id = $3");
        let shadow = Dialect::Sqlite.statements(&ops[3..], true);
        assert_eq!(
            shadow[0].sql,
            "UPDATE t__shadow SET status = ?1, doc = json_patch(doc, ?2) WHERE id = ?3"
        );
    }
}
