//! The training data: catalogs read through the ingest readers into model-ready
//! images and spectra held in memory (with ids, redshifts and source groups), the
//! split into training and validation by a hash of each object's group, and the
//! selection of rows a held-out catalog contributes.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use astrovec_encoders::train::{Augment, Batch};
use astrovec_encoders::AstroClipConfig;
use astrovec_engine::AttrValue;
use astrovec_indexer::ingest::mapping::Mapping;
use astrovec_indexer::ingest::shard::mix;
use astrovec_indexer::ingest::source::open_sources;
use rand_chacha::ChaCha8Rng;

use super::progress;

/// Images and spectra prepared for the model, with ids and redshifts.
pub(super) struct Dataset {
    pub(super) ids: Vec<u64>,
    /// `[n, 3, size, size]`, model-ready (empty rows for pre-training data without images).
    pub(super) images: Vec<f32>,
    /// `[n, spectrum_length]`.
    pub(super) spectra: Vec<f32>,
    /// Redshift per object (NaN where the catalog has none).
    pub(super) redshift: Vec<f64>,
    /// Source group per object: the --group-column value's key, else the id.
    pub(super) groups: Vec<u64>,
    pub(super) image_len: usize,
    pub(super) spectrum_len: usize,
}

impl Dataset {
    /// Objects held.
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The objects at positions `idx`, in that order.
    pub(super) fn subset(&self, idx: &[usize]) -> Dataset {
        let mut out = Dataset {
            ids: Vec::with_capacity(idx.len()),
            images: Vec::with_capacity(idx.len() * self.image_len),
            spectra: Vec::with_capacity(idx.len() * self.spectrum_len),
            redshift: Vec::with_capacity(idx.len()),
            groups: Vec::with_capacity(idx.len()),
            image_len: self.image_len,
            spectrum_len: self.spectrum_len,
        };
        for &i in idx {
            out.ids.push(self.ids[i]);
            if self.image_len > 0 && !self.images.is_empty() {
                out.images
                    .extend_from_slice(&self.images[i * self.image_len..(i + 1) * self.image_len]);
            }
            out.spectra.extend_from_slice(
                &self.spectra[i * self.spectrum_len..(i + 1) * self.spectrum_len],
            );
            out.redshift.push(self.redshift[i]);
            out.groups.push(self.groups[i]);
        }
        out
    }

    /// A batch of items `idx`, augmented with `rng` when `augment` is given.
    pub(super) fn batch(
        &self,
        idx: &[usize],
        augment: Option<(&Augment, &mut ChaCha8Rng)>,
        size: usize,
    ) -> Batch {
        let mut b = Batch {
            len: idx.len(),
            images: Vec::with_capacity(idx.len() * self.image_len),
            spectra: Vec::with_capacity(idx.len() * self.spectrum_len),
        };
        for &i in idx {
            if !self.images.is_empty() {
                b.images
                    .extend_from_slice(&self.images[i * self.image_len..(i + 1) * self.image_len]);
            }
            b.spectra.extend_from_slice(
                &self.spectra[i * self.spectrum_len..(i + 1) * self.spectrum_len],
            );
        }
        if let Some((aug, rng)) = augment {
            if !b.images.is_empty() {
                for img in b.images.chunks_mut(self.image_len) {
                    aug.image(rng, img, 3, size);
                }
            }
            for s in b.spectra.chunks_mut(self.spectrum_len) {
                aug.spectrum(rng, s);
            }
        }
        b
    }
}

/// Which rows [`load`] reads and how it groups them.
#[derive(Default)]
pub(super) struct Selection<'a> {
    /// Rows skipped at the start of the inputs.
    pub(super) skip: usize,
    /// Most objects read.
    pub(super) max: Option<usize>,
    /// Column whose value is each object's group (else the id).
    pub(super) group_column: Option<&'a str>,
    /// Groups whose objects are left out (counted and reported).
    pub(super) exclude: Option<&'a HashSet<u64>>,
}

/// A group key for an attribute value: integers as themselves, floats by their bits,
/// categories by a stable (FNV-1a) hash, so splits repeat across builds and machines.
fn group_key(value: &AttrValue) -> u64 {
    match value {
        AttrValue::Int(i) => *i as u64,
        AttrValue::Float(f) => f.to_bits(),
        AttrValue::Category(c) => c.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        }),
    }
}

/// Splits object positions into (validation, training) by a hash of each object's group,
/// so every object of a group lands on the same side and the split repeats across runs
/// and machines whatever the row order.
pub(super) fn split_by_group(groups: &[u64], val_fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let cut = (val_fraction * 1_000_000.0) as u64;
    (0..groups.len()).partition(|&i| mix(groups[i]) % 1_000_000 < cut)
}

/// Reads every row with the modalities the objective needs; rows without them are
/// counted and skipped (reported), rejected rows are reported by the reader's reason.
pub(super) fn load(
    inputs: &[PathBuf],
    mc: &AstroClipConfig,
    need_images: bool,
    select: &Selection,
    quiet: bool,
) -> Result<Dataset> {
    let (skip, max) = (select.skip, select.max);
    let size = mc.image_backbone.image_size;
    let sl = mc.spectrum_backbone.spectrum_length;
    let (sources, _plan) =
        open_sources(inputs, &Mapping::default(), size).context("opening the training catalog")?;
    let total: u64 = sources.iter().map(|s| s.len()).sum();
    let limit = max.unwrap_or(usize::MAX);
    let bar = progress(quiet, total.min(limit as u64), "reading");
    let mut data = Dataset {
        ids: Vec::new(),
        images: Vec::new(),
        spectra: Vec::new(),
        redshift: Vec::new(),
        groups: Vec::new(),
        image_len: if need_images { 3 * size * size } else { 0 },
        spectrum_len: sl,
    };
    let (mut rejected, mut incomplete, mut excluded) = (0usize, 0usize, 0usize);
    let mut to_skip = skip as u64;
    'files: for source in &sources {
        let start = to_skip.min(source.len());
        to_skip -= start;
        for batch in source.read_from(start, 256)? {
            for outcome in batch? {
                if data.len() >= limit {
                    break 'files;
                }
                bar.inc(1);
                let row = match outcome.result {
                    Ok(r) => r,
                    Err(_) => {
                        rejected += 1;
                        continue;
                    }
                };
                let group = match select.group_column {
                    None => row.id,
                    Some(column) => row
                        .attributes
                        .iter()
                        .find(|(k, _)| k == column)
                        .map(|(_, v)| group_key(v))
                        .with_context(|| {
                            format!(
                                "{}: object {} has no value in the --group-column {column:?}",
                                source.path().display(),
                                row.id
                            )
                        })?,
                };
                if select.exclude.is_some_and(|ex| ex.contains(&group)) {
                    excluded += 1;
                    continue;
                }
                let Some(spectrum) = row.spectrum else {
                    incomplete += 1;
                    continue;
                };
                crate::cmd::check_spectrum_length(source.path(), row.id, spectrum.len(), sl)?;
                if need_images {
                    let Some(img) = row.image else {
                        incomplete += 1;
                        continue;
                    };
                    data.images.extend(crate::cmd::model_image(&img, size)?);
                }
                data.spectra.extend(spectrum);
                data.ids.push(row.id);
                let z = row
                    .attributes
                    .iter()
                    .find(|(k, _)| k == "redshift")
                    .and_then(|(_, v)| match v {
                        AttrValue::Float(f) => Some(*f),
                        AttrValue::Int(i) => Some(*i as f64),
                        AttrValue::Category(_) => None,
                    })
                    .unwrap_or(f64::NAN);
                data.redshift.push(z);
                data.groups.push(group);
            }
        }
    }
    bar.finish_and_clear();
    tracing::info!(
        objects = data.len(),
        rejected,
        without_needed_modality = incomplete,
        excluded_by_group = excluded,
        "catalog read"
    );
    if data.len() < 4 {
        bail!(
            "only {} usable objects in the inputs (need images and spectra for alignment, \
             spectra for pre-training); {rejected} rows rejected, {incomplete} lacked a modality",
            data.len()
        );
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn validation_split_keeps_each_group_on_one_side() {
        // 4,000 objects in 1,000 groups of four, interleaved so that a split by row or by
        // position within the group would separate them.
        let groups: Vec<u64> = (0..4000u64).map(|i| (i % 1000) * 7 + 3).collect();
        let (val, train) = split_by_group(&groups, 0.1);
        assert_eq!(val.len() + train.len(), groups.len());
        let val_groups: HashSet<u64> = val.iter().map(|&i| groups[i]).collect();
        let train_groups: HashSet<u64> = train.iter().map(|&i| groups[i]).collect();
        assert!(
            val_groups.is_disjoint(&train_groups),
            "a group was split between validation and training"
        );
        assert_eq!(val.len(), 4 * val_groups.len());
        // About a tenth of the groups go to validation (binomial sd ≈ 9.5 groups).
        assert!(
            (60..=140).contains(&val_groups.len()),
            "{} of 1000 groups in validation",
            val_groups.len()
        );
        // The same groups in another row order split the same way.
        let mut shuffled = groups.clone();
        shuffled.reverse();
        let (val2, _) = split_by_group(&shuffled, 0.1);
        let val2_groups: HashSet<u64> = val2.iter().map(|&i| shuffled[i]).collect();
        assert_eq!(val_groups, val2_groups);
    }

    #[test]
    fn group_keys_are_stable_and_distinguish_values() {
        assert_eq!(group_key(&AttrValue::Int(42)), 42);
        let a = group_key(&AttrValue::Category("parent-1".into()));
        let b = group_key(&AttrValue::Category("parent-2".into()));
        assert_ne!(a, b);
        // FNV-1a of the empty string is its offset basis: the key does not depend on the
        // build's hasher seed.
        assert_eq!(
            group_key(&AttrValue::Category(String::new())),
            0xcbf2_9ce4_8422_2325
        );
        assert_ne!(
            group_key(&AttrValue::Float(0.5)),
            group_key(&AttrValue::Float(0.25))
        );
    }
}
