// Sparse graph-relational aggregation (SDFL, SPEC §6) on the CPU, forward and backward.
//
// Forward, per (sample b, node o): the softmax weights of o's edges, then
// out[b,o] = bias + Σ a·(self edge ? h_self[b,o] : h_neigh[b,other]) over o's gather list (row o
// of the CSR; column o of the transposed CSR for transposed=True, each edge weighted by the
// softmax of its own row). No dense N×N matrix exists.
// Backward, per (b, source node s), over the opposite list (so every gradient is a gather and
// nothing needs atomics): grad_h_neigh[b,s] = Σ a·grad_out[b,o], grad_h_self[b,s] = a_ss·
// grad_out[b,s], and the edge scores da = <grad_out[b,o], x_s>; then per row the softmax
// backward de = a·(da − Σ_row a·da), summed over b in a fixed order for shared logits; the bias
// gradient from per-block partial sums added in a fixed order. Same bits for any thread count.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "../graph_ops.h"

namespace landmark_kernels {
namespace {

// Rows of a (B,N,F) tensor with unit stride along F: row (b, n) starts at b·sb + n·sn.
template <typename scalar_t>
struct Rows {
  const scalar_t* data;
  int64_t sb, sn;
  const scalar_t* operator()(int64_t b, int64_t n) const { return data + b * sb + n * sn; }
};

template <typename scalar_t>
Rows<scalar_t> rows_of(const at::Tensor& h) {
  return {h.const_data_ptr<scalar_t>(), h.stride(0), h.stride(1)};
}

template <typename T, typename scalar_t>
void axpy(T* acc, T a, const scalar_t* x, int64_t n) {
#pragma omp simd
  for (int64_t f = 0; f < n; ++f) acc[f] += a * T(x[f]);
}

template <typename T, typename scalar_t>
T dot(const scalar_t* x, const scalar_t* y, int64_t n) {
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (int64_t f = 0; f < n; ++f) sum += T(x[f]) * T(y[f]);
  return sum;
}

template <typename scalar_t, typename T>
void store(scalar_t* dst, const T* src, int64_t n) {
#pragma omp simd
  for (int64_t f = 0; f < n; ++f) dst[f] = scalar_t(src[f]);
}

// Work items per parallel chunk: about 64 KiB of features each.
int64_t unit_grain(int64_t features) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(features, 1));
}

template <typename scalar_t>
void forward_kernel(const AggregateProblem& p, bool transposed, const at::Tensor& out) {
  using T = at::opmath_type<scalar_t>;
  const CsrView g = p.graph.view();
  const bool by_rows = !transposed;  // row o gathers its own row; transposed: its column
  const int64_t n = p.nodes, f_size = p.features, edges = g.edges;
  const Rows<scalar_t> h_self = rows_of<scalar_t>(p.h_self);
  const Rows<scalar_t> h_neigh = rows_of<scalar_t>(p.h_neigh);
  const scalar_t* logits = p.logits.const_data_ptr<scalar_t>();
  const scalar_t* bias = p.bias.defined() ? p.bias.const_data_ptr<scalar_t>() : nullptr;
  scalar_t* out_data = out.mutable_data_ptr<scalar_t>();

  at::parallel_for(0, p.batch * n, unit_grain(f_size), [&](int64_t begin, int64_t end) {
    std::vector<T> acc(f_size);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t b = u / n, o = u % n;
      const scalar_t* lg = logits + (p.per_sample ? b * edges : 0);
      for (int64_t f = 0; f < f_size; ++f) acc[f] = bias ? T(bias[f]) : T(0);
      const RowSoftmax<T> own = by_rows ? row_softmax<T>(lg, g, o) : RowSoftmax<T>{};
      int64_t t0, t1;
      list_range(by_rows ? g.rowptr : g.t_rowptr, o, edges, &t0, &t1);
      for (int64_t t = t0; t < t1; ++t) {
        const ListEntry e = list_entry(g, by_rows, t);
        if (!e.valid) continue;
        // Each edge is normalised over its own row: o's row, or the source's (transposed).
        const RowSoftmax<T> sm = by_rows ? own : row_softmax<T>(lg, g, e.other);
        const T a = sm.weight(T(lg[e.edge]));
        axpy(acc.data(), a, e.other == o ? h_self(b, o) : h_neigh(b, e.other), f_size);
      }
      store(out_data + u * f_size, acc.data(), f_size);
    }
  });
}

// Units (b, s) per block of the bias partial sums: fixed, so the order of the final sum does
// not depend on the thread count.
constexpr int64_t kBiasBlock = 64;

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_out_in, const AggregateProblem& p, bool transposed,
                     const at::Tensor& grad_self, const at::Tensor& grad_neigh,
                     const at::Tensor& grad_logits, const at::Tensor& grad_bias) {
  using T = at::opmath_type<scalar_t>;
  const CsrView g = p.graph.view();
  const bool by_rows = transposed;  // the opposite list of the forward's
  const int64_t n = p.nodes, f_size = p.features, edges = g.edges, batch = p.batch;
  const at::Tensor grad_out_t = unit_inner_stride(grad_out_in);
  const Rows<scalar_t> grad_out = rows_of<scalar_t>(grad_out_t);
  const Rows<scalar_t> h_self = rows_of<scalar_t>(p.h_self);
  const Rows<scalar_t> h_neigh = rows_of<scalar_t>(p.h_neigh);
  const scalar_t* logits = p.logits.const_data_ptr<scalar_t>();
  scalar_t* gs_data = grad_self.mutable_data_ptr<scalar_t>();
  scalar_t* gn_data = grad_neigh.mutable_data_ptr<scalar_t>();
  const bool with_bias = grad_bias.numel() > 0;
  const int64_t units = batch * n;
  const int64_t blocks = (units + kBiasBlock - 1) / kBiasBlock;
  std::vector<T> da(batch * edges, T(0));  // ∂loss/∂a per (sample, edge)
  std::vector<T> bias_partial(with_bias ? blocks * f_size : 0, T(0));

  const int64_t block_grain = std::max<int64_t>(1, unit_grain(f_size) / kBiasBlock);
  at::parallel_for(0, blocks, block_grain, [&](int64_t block_begin, int64_t block_end) {
    std::vector<T> acc_self(f_size), acc_neigh(f_size);
    for (int64_t block = block_begin; block < block_end; ++block) {
      T* bias_acc = with_bias ? bias_partial.data() + block * f_size : nullptr;
      for (int64_t u = block * kBiasBlock; u < std::min(units, (block + 1) * kBiasBlock); ++u) {
        const int64_t b = u / n, s = u % n;
        const scalar_t* lg = logits + (p.per_sample ? b * edges : 0);
        std::fill(acc_self.begin(), acc_self.end(), T(0));
        std::fill(acc_neigh.begin(), acc_neigh.end(), T(0));
        const RowSoftmax<T> own = by_rows ? row_softmax<T>(lg, g, s) : RowSoftmax<T>{};
        int64_t t0, t1;
        list_range(by_rows ? g.rowptr : g.t_rowptr, s, edges, &t0, &t1);
        for (int64_t t = t0; t < t1; ++t) {
          const ListEntry e = list_entry(g, by_rows, t);
          if (!e.valid) continue;
          const RowSoftmax<T> sm = by_rows ? own : row_softmax<T>(lg, g, e.other);
          const T a = sm.weight(T(lg[e.edge]));
          const scalar_t* go = grad_out(b, e.other);
          const bool self = e.other == s;
          da[b * edges + e.edge] = dot<T>(go, self ? h_self(b, s) : h_neigh(b, s), f_size);
          axpy(self ? acc_self.data() : acc_neigh.data(), a, go, f_size);
        }
        store(gs_data + u * f_size, acc_self.data(), f_size);
        store(gn_data + u * f_size, acc_neigh.data(), f_size);
        if (bias_acc) axpy(bias_acc, T(1), grad_out(b, s), f_size);
      }
    }
  });

  // Softmax backward per row r: de = a·(da − Σ_row a·da); parallel over rows, samples in order.
  scalar_t* gl_data = grad_logits.mutable_data_ptr<scalar_t>();
  at::parallel_for(0, n, 1, [&](int64_t r_begin, int64_t r_end) {
    std::vector<T> de;
    for (int64_t r = r_begin; r < r_end; ++r) {
      int64_t k0, k1;
      list_range(g.rowptr, r, edges, &k0, &k1);
      de.assign(k1 - k0, T(0));
      for (int64_t b = 0; b < batch; ++b) {
        const scalar_t* lg = logits + (p.per_sample ? b * edges : 0);
        const T* da_b = da.data() + b * edges;
        const RowSoftmax<T> sm = row_softmax<T>(lg, g, r);
        T row_dot = T(0);
        for (int64_t k = k0; k < k1; ++k) row_dot += sm.weight(T(lg[k])) * da_b[k];
        for (int64_t k = k0; k < k1; ++k) {
          const T d = sm.weight(T(lg[k])) * (da_b[k] - row_dot);
          if (p.per_sample) {
            gl_data[b * edges + k] = scalar_t(d);
          } else {
            de[k - k0] += d;
          }
        }
      }
      if (!p.per_sample) store(gl_data + k0, de.data(), k1 - k0);
    }
  });

  if (with_bias) {
    std::vector<T> total(f_size, T(0));
    for (int64_t block = 0; block < blocks; ++block)
      axpy(total.data(), T(1), bias_partial.data() + block * f_size, f_size);
    store(grad_bias.mutable_data_ptr<scalar_t>(), total.data(), f_size);
  }
}

at::Tensor aggregate_forward_cpu(const at::Tensor& h_self, const at::Tensor& h_neigh,
                                 const at::Tensor& logits, const std::optional<at::Tensor>& bias,
                                 const at::Tensor& rowptr, const at::Tensor& col,
                                 const at::Tensor& t_rowptr, const at::Tensor& t_col,
                                 const at::Tensor& perm, bool transposed) {
  const AggregateProblem p =
      prepare_aggregate(h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm);
  at::Tensor out = at::empty({p.batch, p.nodes, p.features}, h_self.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, h_self.scalar_type(),
                                  "graph_relational_aggregate_cpu",
                                  [&] { forward_kernel<scalar_t>(p, transposed, out); });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> aggregate_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& h_self, const at::Tensor& h_neigh,
    const at::Tensor& logits, const at::Tensor& rowptr, const at::Tensor& col,
    const at::Tensor& t_rowptr, const at::Tensor& t_col, const at::Tensor& perm,
    bool transposed, bool bias_grad) {
  const AggregateProblem p =
      prepare_aggregate(h_self, h_neigh, logits, std::nullopt, rowptr, col, t_rowptr, t_col,
                        perm);
  check_aggregate_grad(grad_out, h_self);
  auto [grad_self, grad_neigh, grad_logits, grad_bias] = allocate_aggregate_grads(p, bias_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, h_self.scalar_type(), "graph_relational_aggregate_backward_cpu",
      [&] {
        backward_kernel<scalar_t>(grad_out, p, transposed, grad_self, grad_neigh, grad_logits,
                                  grad_bias);
      });
  return {grad_self, grad_neigh, grad_logits, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) {
  m.impl("graph_relational_aggregate", &aggregate_forward_cpu);
  m.impl("graph_relational_aggregate_backward", &aggregate_backward_cpu);
}

}  // namespace landmark_kernels
