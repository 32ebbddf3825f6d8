//! all-MiniLM-L6-v2, the built-in embedding model: a 6-layer BERT followed by mean pooling and
//! L2 normalisation, computed as sentence-transformers computes it.
//!
//! Plain Rust with no Postgres in it: it runs on the inference threads. The weights are read
//! in place from the memory-mapped safetensors file, never copied, so every backend that uses
//! the model shares one copy in the page cache. (candle, the obvious crate, copies each tensor
//! into the process's own memory: 90 MB per backend.) Matrix products use `gemm`, the kernels
//! candle itself uses, on the rayon pool the caller runs this in.
//!
//! Sequences are not padded: the token rows of a batch are packed into one matrix for the
//! dense layers, and attention runs per sequence. Padding would cost time and change nothing,
//! as sentence-transformers masks it out.

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use gemm::Parallelism;
use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

pub const DIMENSIONS: usize = 384;
/// sentence-transformers' `max_seq_length` for this model: longer inputs are cut to this many
/// tokens, [CLS] and [SEP] included.
pub const MAX_TOKENS: usize = 256;
const HEADS: usize = 12;
const HEAD_SIZE: usize = DIMENSIONS / HEADS;
const INTERMEDIATE: usize = 1536;
const LAYERS: usize = 6;
const VOCABULARY: usize = 30522;
const POSITIONS: usize = 512;
const LAYER_NORM_EPS: f32 = 1e-12;
/// Token rows per forward pass. Bounds the memory of a pass (~20 MB) and the time between two
/// looks at the cancel flag (a step of a layer: tens of milliseconds).
const TOKENS_PER_PASS: usize = 1024;
/// Texts, and bytes of text, tokenized at a time (the cancel flag is read between groups).
const TEXTS_PER_GROUP: usize = 256;
const BYTES_PER_GROUP: usize = 64 << 10;
/// Bytes of a long text tokenized first: MAX_TOKENS tokens of ordinary text take far fewer.
const HEAD_BYTES: usize = MAX_TOKENS * 32;

/// A tensor of the weights file: a byte range of the mapping, f32, aligned.
type Tensor = Range<usize>;

struct Linear {
    weight: Tensor,
    bias: Tensor,
    inputs: usize,
    outputs: usize,
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

pub struct Model {
    weights: Mmap,
    tokenizer: Tokenizer,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// The embeddings of a batch, or None when `cancelled` said stop.
pub type Outcome = Result<Option<Vec<Vec<f32>>>, String>;

impl Model {
    /// Maps `model.safetensors` and reads `tokenizer.json` from `directory`, checking every
    /// tensor's name, type and shape.
    pub fn load(directory: &Path) -> Result<Model, String> {
        let weights_path = directory.join("model.safetensors");
        let file = File::open(&weights_path)
            .map_err(|e| format!("cannot open {}: {e}", weights_path.display()))?;
        // SAFETY: a mapping is unsound only if the file is truncated or rewritten meanwhile;
        // it is installed read-only with the extension and replaced by rename (scripts/setup),
        // which leaves this mapping on the old file.
        let weights = unsafe { Mmap::map(&file) }
            .map_err(|e| format!("cannot map {}: {e}", weights_path.display()))?;
        let tensors = Tensors::read(&weights).map_err(|e| {
            format!(
                "{} is not a valid weights file: {e}",
                weights_path.display()
            )
        })?;

        let tokenizer_path = directory.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| format!("cannot read {}: {e}", tokenizer_path.display()))?;
        // The file pads and truncates to 128; sentence-transformers pads per batch (which
        // packing makes unnecessary) and truncates to max_seq_length.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| format!("cannot set truncation: {e}"))?;

        Ok(Model {
            word_embeddings: tensors.get(
                "embeddings.word_embeddings.weight",
                &[VOCABULARY, DIMENSIONS],
            )?,
            position_embeddings: tensors.get(
                "embeddings.position_embeddings.weight",
                &[POSITIONS, DIMENSIONS],
            )?,
            token_type_embeddings: tensors
                .get("embeddings.token_type_embeddings.weight", &[2, DIMENSIONS])?,
            embedding_norm: tensors.norm("embeddings.LayerNorm.")?,
            layers: (0..LAYERS)
                .map(|i| tensors.layer(&format!("encoder.layer.{i}.")))
                .collect::<Result<_, _>>()?,
            tokenizer,
            weights,
        })
    }

    /// The unit-length embedding of each text, in order. `cancelled` is asked between the steps of
    /// each layer.
    /// Runs its parallel parts on the current rayon pool.
    pub fn embed(&self, texts: &[&str], cancelled: &(dyn Fn() -> bool + Sync)) -> Outcome {
        let mut embeddings = Vec::with_capacity(texts.len());
        let mut texts = texts;
        while !texts.is_empty() {
            if cancelled() {
                return Ok(None);
            }
            let take = fitting(texts, |t| head(t).len(), BYTES_PER_GROUP, TEXTS_PER_GROUP);
            let ids = self.tokenize(&texts[..take])?;
            texts = &texts[take..];
            let mut rest = &ids[..];
            while !rest.is_empty() {
                let take = fitting(rest, Vec::len, TOKENS_PER_PASS, usize::MAX);
                match self.pass(&rest[..take], cancelled) {
                    Some(pass) => embeddings.extend(pass),
                    None => return Ok(None),
                }
                rest = &rest[take..];
            }
        }
        Ok(Some(embeddings))
    }

    /// Token ids of each text, truncated to MAX_TOKENS. A long text is tokenized from its head
    /// only, when the head alone fills the window: the result is the same, and a text of
    /// megabytes costs no more than one of a page.
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, String> {
        let failed = |e: tokenizers::Error| format!("cannot tokenize: {e}");
        let heads: Vec<&str> = texts.iter().map(|t| head(t)).collect();
        let encodings = self
            .tokenizer
            .encode_batch(heads.clone(), true)
            .map_err(failed)?;
        let mut ids = Vec::with_capacity(texts.len());
        for ((encoding, text), head) in encodings.iter().zip(texts).zip(heads) {
            ids.push(
                match encoding.len() < MAX_TOKENS && head.len() < text.len() {
                    true => self
                        .tokenizer
                        .encode(*text, true)
                        .map_err(failed)?
                        .get_ids()
                        .to_vec(),
                    false => encoding.get_ids().to_vec(),
                },
            );
        }
        Ok(ids)
    }

    /// One forward pass over packed sequences: their pooled, normalised embeddings.
    fn pass(
        &self,
        sequences: &[Vec<u32>],
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Option<Vec<Vec<f32>>> {
        let mut spans = Vec::with_capacity(sequences.len());
        let mut rows = 0;
        for ids in sequences {
            spans.push(rows..rows + ids.len());
            rows += ids.len();
        }
        let mut hidden = self.embed_tokens(sequences, rows);
        for layer in &self.layers {
            hidden = self.layer(layer, &hidden, &spans, cancelled)?;
        }
        Some(
            spans
                .iter()
                .map(|span| mean_normalised(&hidden, span))
                .collect(),
        )
    }

    /// Word + position + token type embeddings, normalised.
    fn embed_tokens(&self, sequences: &[Vec<u32>], rows: usize) -> Vec<f32> {
        let words = self.floats(&self.word_embeddings);
        let positions = self.floats(&self.position_embeddings);
        let token_type = &self.floats(&self.token_type_embeddings)[..DIMENSIONS];
        let mut hidden = Vec::with_capacity(rows * DIMENSIONS);
        for ids in sequences {
            for (position, &id) in ids.iter().enumerate() {
                // Unknown ids cannot come from the tokenizer; clamp rather than index out of range.
                let word = row(words, (id as usize).min(VOCABULARY - 1));
                let position = row(positions, position);
                hidden.extend((0..DIMENSIONS).map(|i| word[i] + position[i] + token_type[i]));
            }
        }
        self.layer_norm(&mut hidden, &self.embedding_norm);
        hidden
    }

    /// One transformer layer; None as soon as `cancelled` (asked between its steps) says stop.
    fn layer(
        &self,
        layer: &Layer,
        hidden: &[f32],
        spans: &[Range<usize>],
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Option<Vec<f32>> {
        let go_on = || (!cancelled()).then_some(());
        go_on()?;
        let query = self.linear(hidden, &layer.query);
        let key = self.linear(hidden, &layer.key);
        let value = self.linear(hidden, &layer.value);
        go_on()?;
        let context = attention(&query, &key, &value, spans);
        go_on()?;

        let mut attended = self.linear(&context, &layer.attention_output);
        add(&mut attended, hidden);
        self.layer_norm(&mut attended, &layer.attention_norm);

        go_on()?;
        let mut intermediate = self.linear(&attended, &layer.intermediate);
        go_on()?;
        intermediate
            .par_chunks_mut(INTERMEDIATE)
            .for_each(|row| row.iter_mut().for_each(gelu));
        go_on()?;
        let mut output = self.linear(&intermediate, &layer.output);
        add(&mut output, &attended);
        self.layer_norm(&mut output, &layer.output_norm);
        Some(output)
    }

    /// `input · weightᵀ + bias` for every row of `input` (PyTorch's Linear: weight is
    /// outputs × inputs, row-major).
    fn linear(&self, input: &[f32], linear: &Linear) -> Vec<f32> {
        let rows = input.len() / linear.inputs;
        let bias = self.floats(&linear.bias);
        let mut out: Vec<f32> = Vec::with_capacity(rows * linear.outputs);
        for _ in 0..rows {
            out.extend_from_slice(bias);
        }
        let weight = self.floats(&linear.weight);
        let (n, k) = (linear.outputs, linear.inputs);
        // SAFETY: out is rows × outputs, input rows × inputs, weight outputs × inputs, all
        // row-major; weight is read transposed (its rows as columns).
        unsafe {
            let plan = Product {
                m: rows,
                n,
                k,
                accumulate: true,
                scale: 1.0,
            };
            let operands = (input.as_ptr(), k, 1, weight.as_ptr(), 1, k);
            plan.run(out.as_mut_ptr(), n, operands, parallelism());
        }
        out
    }

    fn layer_norm(&self, rows: &mut [f32], norm: &Norm) {
        let (weight, bias) = (self.floats(&norm.weight), self.floats(&norm.bias));
        rows.par_chunks_mut(DIMENSIONS).for_each(|row| {
            let mean = row.iter().sum::<f32>() / DIMENSIONS as f32;
            let variance =
                row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / DIMENSIONS as f32;
            let scale = 1.0 / (variance + LAYER_NORM_EPS).sqrt();
            for ((x, w), b) in row.iter_mut().zip(weight).zip(bias) {
                *x = (*x - mean) * scale * w + b;
            }
        });
    }

    fn floats(&self, tensor: &Tensor) -> &[f32] {
        // Alignment and length were checked when the model was loaded.
        bytemuck::cast_slice(&self.weights[tensor.clone()])
    }
}

/// How many of the first `items` to take: as many as fit in `budget` by `size`, at most
/// `most`, and at least one.
fn fitting<T>(items: &[T], size: impl Fn(&T) -> usize, budget: usize, most: usize) -> usize {
    let mut used = 0;
    let fits = items.iter().take(most).take_while(|item| {
        used += size(item);
        used <= budget
    });
    fits.count().max(1).min(items.len())
}

/// The start of a long text, cut at an ASCII whitespace after HEAD_BYTES bytes (the whole text
/// when there is none). BERT's normaliser works per character and its pre-tokenizer splits at
/// whitespace, so the tokens of the head are the first tokens of the whole text.
fn head(text: &str) -> &str {
    let Some(after) = text.as_bytes().get(HEAD_BYTES..) else {
        return text;
    };
    match after
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        // An ASCII byte: a character boundary.
        Some(at) => &text[..HEAD_BYTES + at],
        None => text,
    }
}

/// Scaled dot-product attention of each sequence with itself, all heads: the context rows.
fn attention(query: &[f32], key: &[f32], value: &[f32], spans: &[Range<usize>]) -> Vec<f32> {
    let mut context = vec![0f32; query.len()];
    let out = SharedOut(context.as_mut_ptr());
    let scale = 1.0 / (HEAD_SIZE as f32).sqrt();
    let tasks: Vec<(&Range<usize>, usize)> = spans
        .iter()
        .flat_map(|s| (0..HEADS).map(move |h| (s, h)))
        .collect();
    tasks.par_iter().for_each(|&(span, head)| {
        let length = span.len();
        let first = span.start * DIMENSIONS + head * HEAD_SIZE;
        let d = DIMENSIONS;
        let mut scores = vec![0f32; length * length];
        // SAFETY: scores is length × length; query/key/value rows span.start.. hold this
        // head's HEAD_SIZE columns at `first` with row stride DIMENSIONS. Each task writes only
        // its own sequence's rows and head's columns of `context`, so the writes are disjoint.
        unsafe {
            let (q, k, v) = (
                query.as_ptr().add(first),
                key.as_ptr().add(first),
                value.as_ptr().add(first),
            );
            let scores_plan = Product {
                m: length,
                n: length,
                k: HEAD_SIZE,
                accumulate: false,
                scale,
            };
            scores_plan.run(
                scores.as_mut_ptr(),
                length,
                (q, d, 1, k, 1, d),
                Parallelism::None,
            );
            scores.chunks_mut(length).for_each(softmax);
            let context_plan = Product {
                m: length,
                n: HEAD_SIZE,
                k: length,
                accumulate: false,
                scale: 1.0,
            };
            let operands = (scores.as_ptr(), length, 1, v, d, 1);
            context_plan.run(out.at(first), d, operands, Parallelism::None);
        }
    });
    context
}

/// `dst = [dst +] scale · lhs · rhs`, with lhs m × k and rhs k × n; dst is row-major with
/// row stride `dst_row`.
struct Product {
    m: usize,
    n: usize,
    k: usize,
    /// Add to dst (which holds the bias) instead of overwriting it.
    accumulate: bool,
    scale: f32,
}

/// lhs pointer, its row and column strides, then the same for rhs.
type Operands = (*const f32, usize, usize, *const f32, usize, usize);

impl Product {
    /// # Safety
    /// The pointers and strides must describe matrices of the plan's shapes within their
    /// buffers, and nothing else may access dst meanwhile.
    unsafe fn run(
        &self,
        dst: *mut f32,
        dst_row: usize,
        operands: Operands,
        parallelism: Parallelism,
    ) {
        let (lhs, lhs_row, lhs_col, rhs, rhs_row, rhs_col) = operands;
        let s = |stride: usize| stride as isize;
        // gemm computes dst = alpha·dst + beta·lhs·rhs, strides given column first.
        unsafe {
            gemm::gemm(
                self.m,
                self.n,
                self.k,
                dst,
                1,
                s(dst_row),
                self.accumulate,
                lhs,
                s(lhs_col),
                s(lhs_row),
                rhs,
                s(rhs_col),
                s(rhs_row),
                1.0,
                self.scale,
                false,
                false,
                false,
                parallelism,
            )
        }
    }
}

/// The context buffer, written by the attention tasks at disjoint places.
struct SharedOut(*mut f32);
// SAFETY: see `attention`: the tasks write disjoint elements and the buffer outlives them.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// # Safety
    /// `offset` must be within the buffer.
    unsafe fn at(&self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// Mean of the token rows of a sequence, scaled to unit length (as
/// `torch.nn.functional.normalize`, with its epsilon).
fn mean_normalised(hidden: &[f32], span: &Range<usize>) -> Vec<f32> {
    let mut sum = vec![0f32; DIMENSIONS];
    for r in span.clone() {
        for (s, x) in sum.iter_mut().zip(row(hidden, r)) {
            *s += x;
        }
    }
    let count = span.len().max(1) as f32;
    let mean: Vec<f32> = sum.iter().map(|s| s / count).collect();
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    mean.iter().map(|x| x / norm).collect()
}

fn row(matrix: &[f32], index: usize) -> &[f32] {
    &matrix[index * DIMENSIONS..(index + 1) * DIMENSIONS]
}

fn add(into: &mut [f32], other: &[f32]) {
    into.iter_mut().zip(other).for_each(|(a, b)| *a += b);
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    row.iter_mut().for_each(|x| *x /= sum);
}

/// BERT's "gelu": the exact one, with erf (not the tanh approximation).
fn gelu(x: &mut f32) {
    *x = 0.5 * *x * (1.0 + libm::erff(*x * std::f32::consts::FRAC_1_SQRT_2));
}

/// Splits the large products over the current rayon pool.
fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// The tensors of a weights file, by name, as checked byte ranges of the mapping.
struct Tensors<'a> {
    file: SafeTensors<'a>,
    base: usize,
}

impl<'a> Tensors<'a> {
    fn read(mapping: &'a Mmap) -> Result<Tensors<'a>, String> {
        let file = SafeTensors::deserialize(mapping).map_err(|e| e.to_string())?;
        Ok(Tensors {
            file,
            base: mapping.as_ptr() as usize,
        })
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, String> {
        let damaged =
            |what: String| format!("the built-in model's weights are not all-MiniLM-L6-v2: {what}");
        let tensor = self
            .file
            .tensor(name)
            .map_err(|_| damaged(format!("tensor {name} is missing")))?;
        if tensor.dtype() != Dtype::F32 || tensor.shape() != shape {
            return Err(damaged(format!(
                "tensor {name} is {:?} {:?}, not F32 {shape:?}",
                tensor.dtype(),
                tensor.shape()
            )));
        }
        let data = tensor.data();
        let start = data.as_ptr() as usize - self.base;
        if bytemuck::try_cast_slice::<u8, f32>(data).is_err() {
            return Err(damaged(format!("tensor {name} is not aligned")));
        }
        Ok(start..start + data.len())
    }

    fn linear(&self, prefix: &str, inputs: usize, outputs: usize) -> Result<Linear, String> {
        Ok(Linear {
            weight: self.get(&format!("{prefix}weight"), &[outputs, inputs])?,
            bias: self.get(&format!("{prefix}bias"), &[outputs])?,
            inputs,
            outputs,
        })
    }

    fn norm(&self, prefix: &str) -> Result<Norm, String> {
        Ok(Norm {
            weight: self.get(&format!("{prefix}weight"), &[DIMENSIONS])?,
            bias: self.get(&format!("{prefix}bias"), &[DIMENSIONS])?,
        })
    }

    fn layer(&self, prefix: &str) -> Result<Layer, String> {
        let square = |name: &str| self.linear(&format!("{prefix}{name}."), DIMENSIONS, DIMENSIONS);
        Ok(Layer {
            query: square("attention.self.query")?,
            key: square("attention.self.key")?,
            value: square("attention.self.value")?,
            attention_output: square("attention.output.dense")?,
            attention_norm: self.norm(&format!("{prefix}attention.output.LayerNorm."))?,
            intermediate: self.linear(
                &format!("{prefix}intermediate.dense."),
                DIMENSIONS,
                INTERMEDIATE,
            )?,
            output: self.linear(&format!("{prefix}output.dense."), INTERMEDIATE, DIMENSIONS)?,
            output_norm: self.norm(&format!("{prefix}output.LayerNorm."))?,
        })
    }
}
