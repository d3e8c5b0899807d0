// Runs the CPU AWing op through the dispatcher, as a libtorch program would: pred = 1,
// target = 0 everywhere gives the docs/awing.md value 8.495946 (mean), and a gradient of pred's
// shape.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <iostream>

int main() {
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("landmark_kernels::awing_loss", "")
                .typed<std::tuple<at::Tensor, at::Tensor>(
                    const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                    double, double, double, double, double, double, int64_t, int64_t, bool)>();
  auto pred = at::ones({1, 2, 3, 4});
  auto target = at::zeros({1, 2, 3, 4});
  auto [loss, grad] = op.call(pred, target, std::nullopt, 2.1, 14.0, 1.0, 0.5, 0.0, 0.2, 3,
                              /*reduction mean*/ 1, /*compute_grad*/ true);
  std::cout << loss.item<double>() << " " << grad.sizes() << std::endl;
  return 0;
}
