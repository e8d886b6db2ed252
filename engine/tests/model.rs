//! Model-based test: random sequences of upsert / delete / reopen / build_index /
//! optimize against an in-memory model; `get`, embeddings and exact search always
//! agree with the model.

mod common;

use std::collections::BTreeMap;

use astrovec_engine::{AttrValue, Collection, Error, Filter, Object, SearchParams, Strategy};
use proptest::prelude::{prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig};
use proptest::strategy::Strategy as _;

const DIM: usize = 8;
const IDS: u64 = 12;

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        id: u64,
        image: Option<u64>,
        spectrum: Option<u64>,
        z: Option<u8>,
    },
    Delete(u64),
    Reopen,
    Build,
    Optimize,
    Check(u64),
}

#[derive(Debug, Clone, PartialEq)]
struct ModelObj {
    image: Option<u64>,
    spectrum: Option<u64>,
    z: Option<f64>,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        6 => (0..IDS, proptest::option::of(0u64..1000), proptest::option::of(0u64..1000), proptest::option::of(0u8..10))
            .prop_map(|(id, image, spectrum, z)| Op::Upsert { id, image, spectrum, z }),
        2 => (0..IDS).prop_map(Op::Delete),
        1 => Just(Op::Reopen),
        1 => Just(Op::Build),
        1 => Just(Op::Optimize),
        2 => (0u64..1000).prop_map(Op::Check),
    ]
}

fn check(coll: &Collection, model: &BTreeMap<u64, ModelObj>, query_seed: u64) {
    assert_eq!(coll.len(), model.len() as u64);
    for id in 0..IDS {
        match (coll.get(id), model.get(&id)) {
            (Err(Error::NotFound(_)), None) => {}
            (Ok(o), Some(m)) => {
                assert_eq!(
                    o.attributes.get("redshift").cloned(),
                    m.z.map(AttrValue::Float)
                );
                for (name, seed) in [("image", m.image), ("spectrum", m.spectrum)] {
                    match (coll.get_embedding(id, name), seed) {
                        (Ok(v), Some(s)) => {
                            let want = common::unit(&common::vector(s, DIM));
                            assert!(v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
                        }
                        (Err(Error::MissingEmbedding { .. }), None) => {}
                        (got, want) => panic!("embedding {id}/{name}: {got:?} vs model {want:?}"),
                    }
                }
            }
            (got, want) => panic!("get({id}) = {got:?}, model {want:?}"),
        }
    }
    let q = common::vector(query_seed + 5000, DIM);
    let qu = common::unit(&q);
    for (name, filter) in [
        ("image", None),
        ("spectrum", None),
        ("image", Some("redshift < 0.5")),
    ] {
        let mut expected: Vec<(u64, f32)> = model
            .iter()
            .filter(|(_, m)| filter.is_none() || m.z.is_some_and(|z| z < 0.5))
            .filter_map(|(id, m)| {
                let seed = if name == "image" { m.image } else { m.spectrum }?;
                let v = common::unit(&common::vector(seed, DIM));
                Some((*id, v.iter().zip(&qu).map(|(a, b)| a * b).sum::<f32>()))
            })
            .collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        // Ties at the cut may be broken either way: keep the whole ranking for them.
        let ranking = expected.clone();
        expected.truncate(5);
        for strategy in [Strategy::Exact, Strategy::Auto] {
            let mut p = SearchParams::new(5).with_strategy(strategy);
            if let Some(f) = filter {
                p = p.with_filter(Filter::parse(f).unwrap());
            }
            let got = coll.search(&q, name, &p).unwrap();
            assert_eq!(got.len(), expected.len(), "{name} {filter:?} {strategy:?}");
            for (g, e) in got.iter().zip(&expected) {
                assert!((g.score - e.1).abs() < 1e-5, "score {g:?} vs {e:?}");
                // Ties (e.g. two objects sharing a seed) may come in either id order.
                if (g.score - e.1).abs() > 1e-6 || g.id == e.0 {
                    continue;
                }
                assert!(ranking
                    .iter()
                    .any(|x| x.0 == g.id && (x.1 - g.score).abs() < 1e-5));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_an_in_memory_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut coll = Some(Collection::create(&path, common::config(DIM)).unwrap());
        let mut model: BTreeMap<u64, ModelObj> = BTreeMap::new();
        for op in ops {
            let c = coll.as_ref().unwrap();
            match op {
                Op::Upsert { id, image, spectrum, z } => {
                    let mut o = Object::new(id, (id * 30) as f64, -10.0);
                    if let Some(s) = image { o = o.embedding("image", common::vector(s, DIM)); }
                    if let Some(s) = spectrum { o = o.embedding("spectrum", common::vector(s, DIM)); }
                    let z = z.map(|z| z as f64 / 10.0);
                    if let Some(z) = z { o = o.attribute("redshift", AttrValue::Float(z)); }
                    c.upsert(o).unwrap();
                    model.insert(id, ModelObj { image, spectrum, z });
                }
                Op::Delete(id) => {
                    let n = c.delete(&[id]).unwrap();
                    prop_assert_eq!(n, usize::from(model.remove(&id).is_some()));
                }
                Op::Reopen => {
                    // Close before reopening: RocksDB allows one open handle per directory.
                    drop(coll.take());
                    coll = Some(Collection::open(&path).unwrap());
                }
                Op::Build => { c.build_index().unwrap(); }
                Op::Optimize => { c.optimize().unwrap(); }
                Op::Check(seed) => check(c, &model, seed),
            }
        }
        let c = coll.as_ref().unwrap();
        check(c, &model, 1);
        c.verify().unwrap();
    }
}
