// kernels/softmax_xent.h — the training loss and the inference head of a segmentation network:
//   * weighted_cross_entropy: pixel-wise softmax over the channel axis fused with the
//     pixel-weighted cross-entropy of the U-Net paper, E = -sum_x w(x) log p_{l(x)}(x), and its
//     gradient, all in one pass over the logits;
//   * softmax (probabilities over channels) and argmax_channels (per-pixel class), no autograd.
//
// Layout: logits float32 [N, K, H, W] (NCHW, K classes), labels int32 [N, H, W] with values in
// [0, K), weights float32 [N, H, W] (expected >= 0; weight 0 = pixel ignored). Batch >= 1.
// Numerics: log p_k = (a_k - m) - log(sum_j exp(a_j - m)) with m = max_j a_j (log-sum-exp), so
// logits of any finite magnitude give finite losses and gradients.
// Gradient rule: dE/da_k(x) = w(x) · (p_k(x) - [k == l(x)]) for the sum; the weighted mean
// E / W (W = sum_x w(x)) scales that by 1/W, the pixel mean E / P (P = N·H·W) by 1/P. The
// forward writes the unscaled per-pixel gradient and a scalar grad_scale (1, 1/W or 1/P); the
// backward multiplies both by the incoming gradient.
// If W == 0 (every pixel ignored), the weighted mean is defined as 0 and so is its gradient.
// Determinism: the sum over pixels is a fixed two-pass tree on CUDA (block partials, then one
// block; the grid depends only on the pixel count) and fixed-size chunks combined in index order
// on the CPU: the same input gives the same bits every run. No atomics on floats.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace unet {

enum class LossReduction {
  Sum,           // E = -sum_x w(x) log p_{l(x)}(x)
  WeightedMean,  // E / sum_x w(x)  (0 when every weight is 0)
  PixelMean,     // E / (N·H·W): the mean of w·CE over pixels, PyTorch's (w * ce).mean(). Its step
                 // size grows with the weights' mean (1.76 on the ISBI training slices, w0 = 10), the
                 // weighted mean's does not: the two need different learning rates.
};

// Scalar (shape []) loss with autograd to the logits (labels and weights get no gradient).
// Throws ValueError naming the pixel, the label and K when a label is outside [0, K).
Tensor weighted_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& weights,
                              LossReduction reduction = LossReduction::WeightedMean);

// Inference: probabilities over the channel axis, float32 [N, K, H, W]; not differentiable.
Tensor softmax(const Tensor& logits);
// Inference: int32 [N, H, W], the class with the largest logit (first one on ties).
Tensor argmax_channels(const Tensor& logits);

struct XentParams {
  int64_t batch = 0;    // N
  int64_t classes = 0;  // K
  int64_t pixels = 0;   // H·W per image
  LossReduction reduction = LossReduction::Sum;
};

// ---- launchers (raw pointers; CUDA pointers are device pointers) ----------------------------
namespace cpu {
// Writes dlogits (unscaled: w·(p - onehot)), *loss (per the reduction) and *grad_scale (1, 1/W or 1/P).
// Returns the flat pixel index (n·H·W + y·W + x) of the first label outside [0, K), or -1; when
// it is >= 0 the outputs are unspecified.
template <typename T>
int64_t weighted_xent_forward(const XentParams& p, const T* logits, const int32_t* labels,
                              const T* weights, T* dlogits, T* loss, T* grad_scale);
// dx[i] = dlogits[i] · (*grad_loss) · (*grad_scale)
template <typename T>
void weighted_xent_backward(const T* dlogits, const T* grad_loss, const T* grad_scale, T* dx,
                            int64_t n);
template <typename T> void softmax_channels(const XentParams& p, const T* logits, T* probs);
template <typename T> void argmax_channels(const XentParams& p, const T* logits, int32_t* classes);
}  // namespace cpu

namespace cuda {
// Same contract as cpu::weighted_xent_forward; loss and grad_scale point to one device float each.
// Reads back one int (the first bad pixel) after the launches, so it synchronises.
int64_t weighted_xent_forward(const XentParams& p, const float* logits, const int32_t* labels,
                              const float* weights, float* dlogits, float* loss, float* grad_scale);
void weighted_xent_backward(const float* dlogits, const float* grad_loss, const float* grad_scale,
                            float* dx, int64_t n);
void softmax_channels(const XentParams& p, const float* logits, float* probs);
void argmax_channels(const XentParams& p, const float* logits, int32_t* classes);
}  // namespace cuda

}  // namespace unet
