//! The graph's file format: a little-endian header (magic, version, dimension, M,
//! ef_construction, rows, points, entry point), the levels, then the flat
//! neighbour lists; parsing checks every id before the graph can be searched.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;

use super::{Entry, Hnsw, ABSENT, MAX_LEVEL};

/// File magic and format version of a serialised graph.
const MAGIC: &[u8; 8] = b"ASTROHNS";
const FILE_VERSION: u32 = 1;

impl Hnsw {
    /// Serialises the graph (little-endian; see [`Hnsw::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b =
            Vec::with_capacity(64 + self.levels.len() + 4 * (self.links0.len() + self.upper.len()));
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FILE_VERSION.to_le_bytes());
        for v in [self.dim, self.m, self.ef_construction] {
            b.extend_from_slice(&(v as u32).to_le_bytes());
        }
        b.extend_from_slice(&(self.levels.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.len() as u64).to_le_bytes());
        let entry = *self.entry.read();
        b.extend_from_slice(&entry.map_or(u32::MAX, |e| e.node).to_le_bytes());
        b.push(entry.map_or(ABSENT, |e| e.level));
        b.extend_from_slice(&self.levels);
        for a in self.links0.iter().chain(&self.upper) {
            b.extend_from_slice(&a.load(Relaxed).to_le_bytes());
        }
        b
    }

    /// Parses a serialised graph and checks its structure (every id in range and
    /// present at the layer it is linked on), so a damaged file is an error, never
    /// a panic or an out-of-bounds read later. `dim` is the vector file's dimension.
    pub fn from_bytes(bytes: &[u8], dim: usize) -> Result<Hnsw, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != MAGIC {
            return Err("not an astrovec graph file (bad magic)".into());
        }
        let version = r.u32()?;
        if version != FILE_VERSION {
            return Err(format!(
                "graph file version {version}, this build reads {FILE_VERSION}"
            ));
        }
        let (file_dim, m, ef_construction) =
            (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
        if file_dim != dim {
            return Err(format!(
                "graph built on {file_dim}-d vectors, the file holds {dim}-d"
            ));
        }
        if !(2..=1024).contains(&m) {
            return Err(format!("implausible M = {m}"));
        }
        let rows = usize::try_from(r.u64()?).map_err(|_| "row count overflow")?;
        let points = r.u64()? as usize;
        let entry_node = r.u32()?;
        let entry_level = r.take(1)?[0];
        let levels = r.take(rows)?.to_vec();
        let base = Hnsw::extend(None, m, ef_construction, dim, 0, &[]);
        let mut g = Hnsw { levels, ..base };
        let mut total = 0usize;
        g.upper_start = Vec::with_capacity(rows);
        for &l in &g.levels {
            g.upper_start.push(total);
            if l != ABSENT {
                if l > MAX_LEVEL {
                    return Err(format!("node level {l} exceeds {MAX_LEVEL}"));
                }
                total += l as usize * (m + 1);
            }
        }
        let words0 = rows.checked_mul(g.m0 + 1).ok_or("size overflow")?;
        if r.remaining() != (words0 + total) * 4 {
            return Err(format!(
                "{} bytes of lists, the header implies {}",
                r.remaining(),
                (words0 + total) * 4
            ));
        }
        g.links0 = (0..words0)
            .map(|_| r.u32().map(AtomicU32::new))
            .collect::<Result<_, _>>()?;
        g.upper = (0..total)
            .map(|_| r.u32().map(AtomicU32::new))
            .collect::<Result<_, _>>()?;
        g.locks = (0..rows).map(|_| Mutex::new(())).collect();
        let present = g.levels.iter().filter(|l| **l != ABSENT).count();
        if present != points {
            return Err(format!("{present} nodes present, header says {points}"));
        }
        if points > 0 {
            let ok = (entry_node as usize) < rows && g.levels[entry_node as usize] == entry_level;
            if !ok {
                return Err("entry point is not a node of its level".into());
            }
            *g.entry.get_mut() = Some(Entry {
                node: entry_node,
                level: entry_level,
            });
        }
        g.points = AtomicUsize::new(points);
        for node in 0..rows as u32 {
            let level = g.levels[node as usize];
            if level == ABSENT {
                continue;
            }
            for layer in 0..=level {
                let list = g.list(node, layer);
                let n = list[0].load(Relaxed) as usize;
                if n > list.len() - 1 {
                    return Err(format!(
                        "node {node} layer {layer}: {n} neighbours, at most {}",
                        list.len() - 1
                    ));
                }
                for a in &list[1..=n] {
                    let nb = a.load(Relaxed) as usize;
                    if nb >= rows || g.levels[nb] == ABSENT || g.levels[nb] < layer {
                        return Err(format!("node {node} layer {layer}: bad neighbour {nb}"));
                    }
                }
            }
        }
        Ok(g)
    }
}

/// A cursor over the file's bytes: every read checks there are enough left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}
