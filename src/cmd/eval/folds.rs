//! Cross-validation folds of the evaluation: which fold each object belongs to (a hash
//! of its id, or of its group's value so a group never straddles two folds), and fits
//! run fold by fold with every score kept per fold.

use anyhow::Result;
use astrovec_engine::AttrValue;
use astrovec_indexer::ingest::shard::mix;

/// The fold of an object whose key (id or group key) is `key`, among `folds` folds.
/// The same SplitMix64 hash as the training split, so the folds of a catalog repeat
/// across runs, machines and row orders.
pub(crate) fn fold_of(key: u64, folds: usize) -> usize {
    (mix(key) % folds as u64) as usize
}

/// A group key for an attribute value, the one the training split uses for
/// `--group-column`: integers as themselves, floats by their bits, categories by an
/// FNV-1a hash of the text.
pub(crate) fn group_key(value: &AttrValue) -> u64 {
    match value {
        AttrValue::Int(i) => *i as u64,
        AttrValue::Float(f) => f.to_bits(),
        AttrValue::Category(c) => c.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        }),
    }
}

/// One fold's test rows with their truth and the prediction of the fit on the other
/// folds.
pub(crate) struct FoldFit<T, P> {
    pub(crate) truth: Vec<T>,
    pub(crate) pred: Vec<P>,
}

/// Fits on the other folds' rows and predicts each fold's rows, leaving out rows
/// without features or target and folds with fewer than 2 usable rows on either side.
/// Returns one [`FoldFit`] per fold kept, in fold order.
pub(crate) fn per_fold<T: Clone, P>(
    fold: &[usize],
    folds: usize,
    x: &[Option<Vec<f32>>],
    y: &[Option<T>],
    fit: impl Fn(&[Vec<f32>], &[T], &[Vec<f32>]) -> Result<Vec<P>>,
) -> Result<Vec<FoldFit<T, P>>> {
    let mut out = Vec::with_capacity(folds);
    for f in 0..folds {
        let (mut tx, mut ty, mut qx, mut qy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..fold.len() {
            let (Some(xi), Some(yi)) = (&x[i], &y[i]) else {
                continue;
            };
            if fold[i] == f {
                qx.push(xi.clone());
                qy.push(yi.clone());
            } else {
                tx.push(xi.clone());
                ty.push(yi.clone());
            }
        }
        if tx.len() < 2 || qx.len() < 2 {
            continue;
        }
        let pred = fit(&tx, &ty, &qx)?;
        out.push(FoldFit { truth: qy, pred });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_balanced_and_groups_stay_together() {
        let counts = (0..10_000u64).fold([0usize; 5], |mut c, id| {
            c[fold_of(id, 5)] += 1;
            c
        });
        assert!(
            counts.iter().all(|&c| (1_900..2_100).contains(&c)),
            "{counts:?}"
        );
        let a = group_key(&AttrValue::Category("NGC 1".into()));
        assert_eq!(a, group_key(&AttrValue::Category("NGC 1".into())));
        assert_ne!(a, group_key(&AttrValue::Category("NGC 2".into())));
        assert_eq!(group_key(&AttrValue::Int(42)), 42);
    }

    #[test]
    fn each_fold_is_predicted_by_the_others() {
        let fold = [0, 1, 0, 1, 0, 1];
        let x: Vec<Option<Vec<f32>>> = (0..6).map(|i| Some(vec![i as f32])).collect();
        let y: Vec<Option<usize>> = (0..6).map(|i| Some(fold[i])).collect();
        // The "model" returns the training rows' folds: always the other fold.
        let fits = per_fold(&fold, 2, &x, &y, |_, ty, qx| Ok(vec![ty[0]; qx.len()])).unwrap();
        assert_eq!(fits.len(), 2);
        assert_eq!(fits[0].truth, vec![0, 0, 0]);
        assert_eq!(fits[0].pred, vec![1, 1, 1]);
        assert_eq!(fits[1].pred, vec![0, 0, 0]);
    }
}
