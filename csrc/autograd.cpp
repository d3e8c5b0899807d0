// Autograd kernels, in C++, of the small fused losses (Wing, SoftWing, ACR, PFLD).
//
// Their tensors are tiny (B·N·D ≈ 10²–10⁵ elements), so a training step's cost is host time,
// not bytes: an autograd rule registered from Python costs a Python Function per call — about
// as much as the whole forward kernel of a batch of 64 faces on the CPU. Here the dispatcher
// runs forward and backward without entering Python, and libtorch users (the CMake package)
// get the same gradients. The big-tensor ops (AWing, graphs) keep their rules in Python
// (landmark_kernels/_fused.py), where the host path is negligible; the Triton twins of these
// ops keep theirs there too.
//
// The contract is the fused-loss one (_fused.py): the forward kernel stores ∂loss/∂pred for
// grad_output = 1 in a new buffer; the backward only multiplies it by grad_output.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace lk {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Tensors traced by torch.compile / opcheck (FakeTensor, FunctionalTensor) carry these keys;
// eager tensors do not. Traced code may not read values (grad_output == 1) or refuse
// create_graph (AOTAutograd traces the backward with grad mode on).
bool is_traced(const Tensor& t) {
  return t.key_set().has_any(
      c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize}));
}

void check_backward(bool compute_grad, const Tensor& grad_output, const char* op) {
  TORCH_CHECK(compute_grad, op, " was computed with compute_grad=False, so it has no gradient "
              "buffer; call it with compute_grad=True to backpropagate");
  // create_graph=True: the stored gradient is a constant to autograd, so a second derivative
  // through it would be silently wrong.
  TORCH_CHECK(!at::GradMode::is_enabled() || is_traced(grad_output),
              "landmark_kernels losses do not support double backward (create_graph=True); use "
              "backend='torch' for that");
}

// Whether grad_output is the common one: a CPU 1 (read without a device sync; never for traced
// tensors, whose values do not exist).
bool is_unit(const Tensor& grad_output) {
  if (is_traced(grad_output) || !grad_output.is_cpu() || grad_output.numel() != 1) return false;
  // The loss dtypes, read in place: item() would cost a dispatch per backward.
  switch (grad_output.scalar_type()) {
    case at::kFloat:
      return *grad_output.const_data_ptr<float>() == 1.0f;
    case at::kDouble:
      return *grad_output.const_data_ptr<double>() == 1.0;
    default:
      return grad_output.item<double>() == 1.0;
  }
}

// grad_output · stored, in pred's dtype. For grad_output 1 the buffer is handed on as it is (no
// pass over the data); autograd's AccumulateGrad copies it if anyone else holds it.
Tensor scale_stored(const Tensor& stored, const Tensor& grad_output, at::ScalarType pred_dtype,
                    bool unit) {
  if (unit) return stored.scalar_type() == pred_dtype ? stored : stored.to(pred_dtype);
  // The product in the loss dtype (fp32/fp64), rounded once to pred's dtype.
  return (stored.to(grad_output.scalar_type()) * grad_output).to(pred_dtype);
}

// A fused single-loss op `(pred, args..., reduction, compute_grad) -> (loss, grad)`.
template <class... Args>
struct FusedLoss : public torch::autograd::Function<FusedLoss<Args...>> {
  using Op = c10::TypedOperatorHandle<std::tuple<Tensor, Tensor>(const Tensor&, Args...)>;

  static variable_list forward(AutogradContext* ctx, Op op, const Tensor& pred, Args... args) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [loss, grad] = op.call(pred, args...);
    ctx->mark_non_differentiable({grad});
    // The stored gradient never receives one: materialising it would zero a pred-sized tensor
    // per backward (a third of the backward's time for a batch of 64 faces).
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({grad});
    ctx->saved_data["pred_dtype"] = static_cast<int64_t>(pred.scalar_type());
    ctx->saved_data["compute_grad"] = std::get<sizeof...(Args) - 1>(std::forward_as_tuple(args...));
    return {loss, grad};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list out(2 + sizeof...(Args));  // op, pred, args: only pred gets a gradient
    if (!grads[0].defined()) return out;
    const Tensor stored = ctx->get_saved_variables()[0];
    check_backward(ctx->saved_data["compute_grad"].toBool(), grads[0], "this loss");
    out[1] = scale_stored(stored, grads[0],
                          static_cast<at::ScalarType>(ctx->saved_data["pred_dtype"].toInt()),
                          is_unit(grads[0]));
    return out;
  }
};

// A None passed for a Tensor argument arrives undefined; autograd's bookkeeping cannot describe
// it, so such calls go straight to the kernel, whose checks name the missing argument.
template <class T>
bool is_undefined_tensor(const T& value) {
  if constexpr (std::is_same_v<std::decay_t<T>, Tensor>) {
    return !value.defined();
  } else {
    return false;
  }
}

// The Autograd-key kernel of the op `Name` with arguments (pred, args...). The schema is looked
// up on the first call: at load time its TORCH_LIBRARY block may not have run yet.
template <const char* Name, class... Args>
std::tuple<Tensor, Tensor> fused_loss_autograd(const Tensor& pred, Args... args) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow(Name, "")
                             .typed<std::tuple<Tensor, Tensor>(const Tensor&, Args...)>();
  if (!pred.defined() || (is_undefined_tensor(args) || ...)) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return op.call(pred, args...);
  }
  auto out = FusedLoss<Args...>::apply(op, pred, args...);
  return {out[0], out[1]};
}

// PFLD (pfld_loss.h): (weighted, l2, grad_pred = ∂weighted/∂pred, grad_angles =
// ∂weighted/∂angles). Training `weighted` alone, PFLD-pytorch's loop, hands both buffers on; l2's
// gradient 2(ŷ − y)/B is computed here from the saved inputs, when l2 gets one.
using PfldOut = std::tuple<Tensor, Tensor, Tensor, Tensor>;
using PfldOp = c10::TypedOperatorHandle<PfldOut(const Tensor&, const Tensor&, const Tensor&,
                                                const Tensor&, const Tensor&,
                                                const std::optional<Tensor>&, bool, double, bool)>;

struct PfldLoss : public torch::autograd::Function<PfldLoss> {
  static variable_list forward(AutogradContext* ctx, PfldOp op, const Tensor& pred,
                               const Tensor& target, const Tensor& angles,
                               const Tensor& angles_target, const Tensor& attributes,
                               const std::optional<Tensor>& attribute_weights, bool degrees,
                               double weight_floor, bool compute_grad) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto [weighted, l2, grad_pred, grad_angles] =
        op.call(pred, target, angles, angles_target, attributes, attribute_weights, degrees,
                weight_floor, compute_grad);
    ctx->mark_non_differentiable({grad_pred, grad_angles});
    ctx->set_materialize_grads(false);  // l2 usually gets no gradient: no zeros for it
    ctx->save_for_backward({grad_pred, grad_angles, pred, target});
    ctx->saved_data["compute_grad"] = compute_grad;
    ctx->saved_data["angles_dtype"] = static_cast<int64_t>(angles.scalar_type());
    return {weighted, l2, grad_pred, grad_angles};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const Tensor &grad_weighted = grads[0], &grad_l2 = grads[1];
    variable_list out(10);  // op + the nine op arguments
    if (!grad_weighted.defined() && !grad_l2.defined()) return out;
    const auto saved = ctx->get_saved_variables();
    const Tensor &grad_pred = saved[0], &grad_angles = saved[1], &pred = saved[2],
                 &target = saved[3];
    check_backward(ctx->saved_data["compute_grad"].toBool(),
                   grad_weighted.defined() ? grad_weighted : grad_l2, "pfld_loss");
    const bool unit = grad_weighted.defined() && is_unit(grad_weighted);
    if (!grad_l2.defined()) {
      out[1] = scale_stored(grad_pred, grad_weighted, pred.scalar_type(), unit);
    } else {  // g_weighted·grad_pred + g_l2·2(ŷ − y)/B, in the loss dtype
      const auto acc = grad_l2.scalar_type();
      // sym_size: under torch.compile the batch stays a symbol (no recompile per batch size).
      Tensor total = (pred.to(acc) - target.to(acc)) * (grad_l2 * 2.0).div(pred.sym_size(0));
      if (grad_weighted.defined()) total = total + grad_pred.to(acc) * grad_weighted;
      out[1] = total.to(pred.scalar_type());
    }
    if (grad_weighted.defined()) {
      out[3] = scale_stored(grad_angles, grad_weighted,
                            static_cast<at::ScalarType>(ctx->saved_data["angles_dtype"].toInt()),
                            unit);
    }
    return out;
  }
};

PfldOut pfld_loss_autograd(const Tensor& pred, const Tensor& target, const Tensor& angles,
                           const Tensor& angles_target, const Tensor& attributes,
                           const std::optional<Tensor>& attribute_weights, bool degrees,
                           double weight_floor, bool compute_grad) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("landmark_kernels::pfld_loss", "")
                             .typed<PfldOut(const Tensor&, const Tensor&, const Tensor&,
                                            const Tensor&, const Tensor&,
                                            const std::optional<Tensor>&, bool, double, bool)>();
  if (!pred.defined() || !target.defined() || !angles.defined() || !angles_target.defined() ||
      !attributes.defined()) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return op.call(pred, target, angles, angles_target, attributes, attribute_weights, degrees,
                   weight_floor, compute_grad);
  }
  auto out = PfldLoss::apply(op, pred, target, angles, angles_target, attributes,
                             attribute_weights, degrees, weight_floor, compute_grad);
  return {out[0], out[1], out[2], out[3]};
}

using OptTensor = const std::optional<Tensor>&;
constexpr char kWing[] = "landmark_kernels::wing_loss";
constexpr char kSoftWing[] = "landmark_kernels::soft_wing_loss";
constexpr char kAcr[] = "landmark_kernels::acr_loss";

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, Autograd, m) {
  m.impl("wing_loss",
         &fused_loss_autograd<kWing, const Tensor&, OptTensor, double, double, int64_t, bool>);
  m.impl("soft_wing_loss", &fused_loss_autograd<kSoftWing, const Tensor&, OptTensor, double,
                                                double, double, int64_t, bool>);
  m.impl("acr_loss",
         &fused_loss_autograd<kAcr, const Tensor&, const Tensor&, double, int64_t, bool>);
  m.impl("pfld_loss", &pfld_loss_autograd);
}

}  // namespace lk
