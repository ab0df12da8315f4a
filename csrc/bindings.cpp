// Python bindings of the planning core: the problem structs, one planner class per host backend
// (ReferencePlanner, CpuPlanner; CudaPlanner when compiled with CUDA) and test helpers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#include "ami_robot/philox.h"
#include "ami_robot/planner.h"
#include "cpu/cpu_rollout.h"
#include "cpu/kernels.h"
#include "reference/reference.h"

#ifdef AMI_ROBOT_WITH_CUDA
#include "cuda/cuda_planner.h"
#endif

namespace py = pybind11;
using ami::Problem;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

namespace {

#ifndef AMI_ROBOT_COMPILER
#define AMI_ROBOT_COMPILER "unknown"
#endif
#ifndef AMI_ROBOT_CUDA_ARCHITECTURES
#define AMI_ROBOT_CUDA_ARCHITECTURES ""
#endif
#ifndef AMI_ROBOT_SIMD_FLAGS
#define AMI_ROBOT_SIMD_FLAGS ""
#endif

void check_shape(const FloatArray& a, std::initializer_list<py::ssize_t> shape, const char* name) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  size_t i = 0;
  for (py::ssize_t s : shape) ok = ok && a.shape(i++) == s;
  if (!ok) {
    std::string want = "(", got = "(";
    i = 0;
    for (py::ssize_t s : shape) want += (i++ ? ", " : "") + std::to_string(s);
    for (py::ssize_t j = 0; j < a.ndim(); ++j) got += (j ? ", " : "") + std::to_string(a.shape(j));
    throw py::value_error(std::string(name) + ": expected shape " + want + "), got " + got + ")");
  }
}

// project_sequence reads max_rate[a] for every action dimension a and trusts low <= high.
void check_projection_bounds(const ami::ActionBounds& bounds) {
  const size_t A = bounds.low.size();
  if (!bounds.max_rate.empty() && bounds.max_rate.size() != A)
    throw py::value_error("bounds.max_rate: expected 0 or " + std::to_string(A) + " values (one per action), got " +
                          std::to_string(bounds.max_rate.size()));
  for (size_t a = 0; a < A; ++a) {
    const std::string at = " at index " + std::to_string(a);
    if (std::isnan(bounds.low[a]) || std::isnan(bounds.high[a])) throw py::value_error("bounds: NaN" + at);
    if (bounds.low[a] > bounds.high[a]) throw py::value_error("bounds: low > high" + at);
    if (!bounds.max_rate.empty() && !(std::isfinite(bounds.max_rate[a]) && bounds.max_rate[a] >= 0.0f))
      throw py::value_error("bounds.max_rate must be finite and >= 0" + at);
  }
}

FloatArray new_array(std::initializer_list<py::ssize_t> shape) { return FloatArray(std::vector<py::ssize_t>(shape)); }

// One planner = the shared sampling loop + a backend's RolloutCost, with input checks.
class PyPlanner {
 public:
  PyPlanner(std::unique_ptr<ami::PlannerBackend> planner, std::string name)
      : planner_(std::move(planner)), name_(std::move(name)) {}

  py::tuple plan(const FloatArray& z0, const FloatArray& goal, std::optional<FloatArray> prev_action,
                 const FloatArray& init_mean, const FloatArray& init_std, std::optional<FloatArray> noise,
                 uint64_t plan_index) {
    const Problem& p = planner_->problem();
    const int H = p.sampler.horizon, A = p.model.action_dim, D = p.model.latent_dim;
    check_shape(z0, {p.model.history, D}, "z0");
    check_shape(goal, {D}, "goal");
    if (prev_action) check_shape(*prev_action, {A}, "prev_action");
    check_shape(init_mean, {H, A}, "init_mean");
    check_shape(init_std, {H, A}, "init_std");
    if (noise) check_shape(*noise, {p.sampler.iterations, p.sampler.samples, H, A}, "noise");
    ami::PlanRequest req;
    req.z0 = z0.data();
    req.goal = goal.data();
    req.prev_action = prev_action ? prev_action->data() : nullptr;
    req.init_mean = init_mean.data();
    req.init_std = init_std.data();
    req.noise = noise ? noise->data() : nullptr;
    req.plan_index = plan_index;
    FloatArray mean = new_array({H, A}), std = new_array({H, A}), best = new_array({H, A});
    FloatArray std_history = new_array({p.sampler.iterations, H, A});
    float* mean_out = mean.mutable_data();
    float* std_out = std.mutable_data();
    float* best_out = best.mutable_data();
    float* history_out = std_history.mutable_data();
    float cost = 0.0f, best_cost = 0.0f;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      planner_->plan(req, out_);
      std::memcpy(mean_out, out_.mean.data(), sizeof(float) * H * A);
      std::memcpy(std_out, out_.std.data(), sizeof(float) * H * A);
      std::memcpy(best_out, out_.best_actions.data(), sizeof(float) * H * A);
      std::memcpy(history_out, out_.std_history.data(), sizeof(float) * out_.std_history.size());
      cost = out_.cost;
      best_cost = out_.best_cost;
    }
    return py::make_tuple(mean, std, cost, best, best_cost, std_history);
  }

  FloatArray rollout_cost(const FloatArray& actions, const FloatArray& z0, const FloatArray& goal,
                          std::optional<FloatArray> prev_action) {
    const int n = check(actions, z0, goal, prev_action);
    FloatArray cost = new_array({n});
    float* out = cost.mutable_data();
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      set_start(z0, goal, prev_action);
      planner_->rollout().evaluate(actions.data(), n, out);
    }
    return cost;
  }

  FloatArray predict(const FloatArray& actions, const FloatArray& z0) {
    const Problem& p = planner_->problem();
    FloatArray goal = new_array({p.model.latent_dim});
    std::fill_n(goal.mutable_data(), p.model.latent_dim, 0.0f);
    const int n = check(actions, z0, goal, std::nullopt);
    FloatArray z = new_array({n, p.sampler.horizon, p.model.latent_dim});
    float* out = z.mutable_data();
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      set_start(z0, goal, std::nullopt);
      planner_->rollout().predict(actions.data(), n, out);
    }
    return z;
  }

  const std::string& kernels() const { return name_; }
  int threads() { return planner_->rollout().threads(); }

 private:
  // Validates the arrays (with the GIL held); returns n.
  int check(const FloatArray& actions, const FloatArray& z0, const FloatArray& goal,
            const std::optional<FloatArray>& prev_action) const {
    const Problem& p = planner_->problem();
    const int H = p.sampler.horizon, A = p.model.action_dim, D = p.model.latent_dim;
    if (actions.ndim() != 3 || actions.shape(1) != H || actions.shape(2) != A)
      throw py::value_error("actions: expected shape (n, " + std::to_string(H) + ", " + std::to_string(A) + ")");
    const int n = static_cast<int>(actions.shape(0));
    if (n < 1 || n > p.sampler.samples)
      throw py::value_error("actions: n must be in [1, samples=" + std::to_string(p.sampler.samples) + "]");
    check_shape(z0, {p.model.history, D}, "z0");
    check_shape(goal, {D}, "goal");
    if (prev_action) check_shape(*prev_action, {A}, "prev_action");
    return n;
  }

  void set_start(const FloatArray& z0, const FloatArray& goal, const std::optional<FloatArray>& prev_action) {
    planner_->rollout().set_start(z0.data(), goal.data(), prev_action ? prev_action->data() : nullptr);
  }

  ami::PlanOutput out_;

 protected:
  std::unique_ptr<ami::PlannerBackend> planner_;
  std::mutex mutex_;  // every call that uses the backend's buffers holds it (the GIL is released)

 private:
  std::string name_;
};

#ifdef AMI_ROBOT_WITH_CUDA
// The CUDA planner: a Planner that also plans from device memory (raw pointers, checked on the
// device side; ami_robot.planning.backends.cuda_arrays wraps torch / __cuda_array_interface__ arrays).
class PyCudaPlanner : public PyPlanner {
 public:
  PyCudaPlanner(std::unique_ptr<ami::cuda::DevicePlanner> planner, std::string name)
      : PyCudaPlanner(planner.get(), std::move(planner), std::move(name)) {}

  void plan_device(uintptr_t z0, uintptr_t goal, uintptr_t prev_action, uintptr_t init_mean, uintptr_t init_std,
                   uintptr_t noise, uint64_t plan_index, uintptr_t out, uintptr_t stream) {
    auto ptr = [](uintptr_t p) { return reinterpret_cast<const float*>(p); };
    ami::cuda::DevicePlanRequest req;
    req.z0 = ptr(z0);
    req.goal = ptr(goal);
    req.prev_action = ptr(prev_action);
    req.init_mean = ptr(init_mean);
    req.init_std = ptr(init_std);
    req.noise = ptr(noise);
    req.plan_index = plan_index;
    req.out = reinterpret_cast<float*>(out);
    req.stream = stream;
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mutex_);
    device_planner_->plan_device(req);
  }

  std::string precision() const { return ami::cuda::precision_name(device_planner_->precision()); }
  int device() const { return device_planner_->device(); }

 private:
  PyCudaPlanner(ami::cuda::DevicePlanner* raw, std::unique_ptr<ami::cuda::DevicePlanner> planner, std::string name)
      : PyPlanner(std::move(planner), std::move(name)), device_planner_(raw) {}
  ami::cuda::DevicePlanner* device_planner_;
};
#endif

std::vector<float> to_vector(const FloatArray& a) { return std::vector<float>(a.data(), a.data() + a.size()); }

ami::LinearLayer make_layer(const FloatArray& weight, const FloatArray& bias, std::optional<FloatArray> gamma,
                            std::optional<FloatArray> beta) {
  if (weight.ndim() != 2) throw py::value_error("weight: expected a 2-D (out, in) array");
  ami::LinearLayer l;
  l.out = static_cast<int>(weight.shape(0));
  l.in = static_cast<int>(weight.shape(1));
  l.weight = to_vector(weight);
  l.bias = to_vector(bias);
  if (gamma.has_value() != beta.has_value()) throw py::value_error("give both LayerNorm weight and bias, or neither");
  if (gamma) {
    l.ln_gamma = to_vector(*gamma);
    l.ln_beta = to_vector(*beta);
  }
  return l;
}

void add_layer(ami::MlpModel& m, const FloatArray& weight, const FloatArray& bias, std::optional<FloatArray> gamma,
               std::optional<FloatArray> beta) {
  m.layers.push_back(make_layer(weight, bias, std::move(gamma), std::move(beta)));
}

void add_critic_layer(ami::CriticModel& c, const FloatArray& weight, const FloatArray& bias,
                      std::optional<FloatArray> gamma, std::optional<FloatArray> beta) {
  c.layers.push_back(make_layer(weight, bias, std::move(gamma), std::move(beta)));
}

Problem make_problem(const ami::MlpModel& model, const ami::CostParams& cost, const ami::ActionBounds& bounds,
                     const ami::SamplerParams& sampler, std::vector<ami::MlpModel> ensemble = {}) {
  Problem p{model, cost, bounds, sampler, std::move(ensemble)};
  try {
    p.validate();
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return p;
}

py::dict build_info() {
  py::dict info;
  info["version"] = AMI_ROBOT_VERSION;
#ifdef AMI_ROBOT_WITH_CUDA
  info["cuda"] = true;
#else
  info["cuda"] = false;
#endif
  info["cuda_architectures"] = std::string(AMI_ROBOT_CUDA_ARCHITECTURES);
  info["compiler"] = std::string(AMI_ROBOT_COMPILER);
#ifdef AMI_ROBOT_WITH_OPENMP
  info["openmp"] = true;
#else
  info["openmp"] = false;
#endif
  info["threads"] = ami::cpu_default_threads();
  info["simd_flags"] = std::string(AMI_ROBOT_SIMD_FLAGS);
  int count = 0;
  const char* const* isas = ami::cpu::available_isas(&count);
  py::list compiled, usable;
  if (ami::cpu::kernels_avx512()) compiled.append("avx512");
  if (ami::cpu::kernels_avx2()) compiled.append("avx2");
  compiled.append("generic");
  for (int i = 0; i < count; ++i) usable.append(isas[i]);
  info["cpu_kernels_compiled"] = compiled;
  info["cpu_kernels_usable"] = usable;
  info["cpu_kernels_auto"] = std::string(ami::cpu::select_kernels("auto").isa);
  return info;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "ami_robot accelerated planning core (reference, CPU and optional CUDA backends)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  py::enum_<ami::Activation>(m, "Activation")
      .value("GELU", ami::Activation::GELU)
      .value("SiLU", ami::Activation::SiLU)
      .value("ReLU", ami::Activation::ReLU)
      .value("Tanh", ami::Activation::Tanh);
  py::enum_<ami::Method>(m, "Method").value("CEM", ami::Method::CEM).value("MPPI", ami::Method::MPPI);

  py::class_<ami::MlpModel>(m, "MlpModel")
      .def(py::init([](int latent_dim, int action_dim, int history, const std::string& activation, float ln_eps) {
             ami::MlpModel model;
             model.latent_dim = latent_dim;
             model.action_dim = action_dim;
             model.history = history;
             model.activation = ami::activation_from_name(activation);
             model.ln_eps = ln_eps;
             return model;
           }),
           py::arg("latent_dim"), py::arg("action_dim"), py::arg("history"), py::arg("activation"),
           py::arg("ln_eps"))
      .def("add_layer", &add_layer, py::arg("weight"), py::arg("bias"), py::arg("ln_weight") = py::none(),
           py::arg("ln_bias") = py::none())
      .def("macs_per_step", &ami::MlpModel::macs_per_step)
      .def_property_readonly("num_layers", [](const ami::MlpModel& mm) { return mm.layers.size(); });

  py::class_<ami::CriticModel>(m, "CriticModel")
      .def(py::init([](int latent_dim, int asymmetric_dim, const std::string& activation, float ln_eps,
                       float symmetric_eps) {
             ami::CriticModel critic;
             critic.latent_dim = latent_dim;
             critic.asymmetric_dim = asymmetric_dim;
             critic.activation = ami::activation_from_name(activation);
             critic.ln_eps = ln_eps;
             critic.symmetric_eps = symmetric_eps;
             return critic;
           }),
           py::arg("latent_dim"), py::arg("asymmetric_dim"), py::arg("activation"), py::arg("ln_eps"),
           py::arg("symmetric_eps"))
      .def("add_layer", &add_critic_layer, py::arg("weight"), py::arg("bias"), py::arg("ln_weight") = py::none(),
           py::arg("ln_bias") = py::none(),
           "Append a Linear layer (out, in); hidden layers are followed by the LayerNorm when given, then the "
           "activation; the last layer outputs the embedding.")
      .def_property_readonly("num_layers", [](const ami::CriticModel& c) { return c.layers.size(); })
      .def_property_readonly("embed_dim", &ami::CriticModel::embed_dim);

  py::class_<ami::CostParams>(m, "CostParams")
      .def(py::init<>())
      .def_readwrite("goal_weight", &ami::CostParams::goal_weight)
      .def_readwrite("goal_running_weight", &ami::CostParams::goal_running_weight)
      .def_readwrite("action_weight", &ami::CostParams::action_weight)
      .def_readwrite("smoothness_weight", &ami::CostParams::smoothness_weight)
      .def_readwrite("latent_bound_weight", &ami::CostParams::latent_bound_weight)
      .def_readwrite("latent_low", &ami::CostParams::latent_low)
      .def_readwrite("latent_high", &ami::CostParams::latent_high)
      .def_readwrite("critic_weight", &ami::CostParams::critic_weight)
      .def_readwrite("critic_running_weight", &ami::CostParams::critic_running_weight)
      .def_readwrite("critic", &ami::CostParams::critic)
      .def_readwrite("disagreement_weight", &ami::CostParams::disagreement_weight)
      .def_readwrite("disagreement_running_weight", &ami::CostParams::disagreement_running_weight);

  py::class_<ami::ActionBounds>(m, "ActionBounds")
      .def(py::init<>())
      .def_readwrite("low", &ami::ActionBounds::low)
      .def_readwrite("high", &ami::ActionBounds::high)
      .def_readwrite("max_rate", &ami::ActionBounds::max_rate);

  py::class_<ami::SamplerParams>(m, "SamplerParams")
      .def(py::init<>())
      .def_readwrite("method", &ami::SamplerParams::method)
      .def_readwrite("horizon", &ami::SamplerParams::horizon)
      .def_readwrite("samples", &ami::SamplerParams::samples)
      .def_readwrite("iterations", &ami::SamplerParams::iterations)
      .def_readwrite("elites", &ami::SamplerParams::elites)
      .def_readwrite("keep_elites", &ami::SamplerParams::keep_elites)
      .def_readwrite("momentum", &ami::SamplerParams::momentum)
      .def_readwrite("min_std", &ami::SamplerParams::min_std)
      .def_readwrite("temperature", &ami::SamplerParams::temperature)
      .def_readwrite("control_cost_weight", &ami::SamplerParams::control_cost_weight)
      .def_readwrite("std_decay", &ami::SamplerParams::std_decay)
      .def_readwrite("seed", &ami::SamplerParams::seed);

  auto planner = py::class_<PyPlanner>(m, "Planner")
      .def("plan", &PyPlanner::plan, py::arg("z0"), py::arg("goal"), py::arg("prev_action"), py::arg("init_mean"),
           py::arg("init_std"), py::arg("noise"), py::arg("plan_index"),
           "Run the sampler; returns (mean (H, A), std (H, A), cost, best_actions (H, A), best_cost, "
           "std_history (iterations, H, A)).")
      .def("rollout_cost", &PyPlanner::rollout_cost, py::arg("actions"), py::arg("z0"), py::arg("goal"),
           py::arg("prev_action") = py::none(), "Cost (n,) of n <= samples already-projected sequences (n, H, A).")
      .def("predict", &PyPlanner::predict, py::arg("actions"), py::arg("z0"), "Predicted latents (n, H, D).")
      .def_property_readonly("kernels", &PyPlanner::kernels)
      .def_property_readonly("threads", &PyPlanner::threads);

  m.def(
      "reference_planner",
      [](const ami::MlpModel& model, const ami::CostParams& cost, const ami::ActionBounds& bounds,
         const ami::SamplerParams& sampler, std::vector<ami::MlpModel> ensemble) {
        Problem p = make_problem(model, cost, bounds, sampler, std::move(ensemble));
        auto rollout = ami::make_reference_rollout(p);
        return new PyPlanner(std::make_unique<ami::SamplingPlanner>(std::move(p), std::move(rollout)), "reference");
      },
      py::arg("model"), py::arg("cost"), py::arg("bounds"), py::arg("sampler"),
      py::arg("ensemble") = std::vector<ami::MlpModel>{}, py::return_value_policy::take_ownership,
      "ensemble: M >= 2 predictors of model's architecture rolled out in its place (or empty).");
  m.def(
      "cpu_planner",
      [](const ami::MlpModel& model, const ami::CostParams& cost, const ami::ActionBounds& bounds,
         const ami::SamplerParams& sampler, int threads, const std::string& isa, std::vector<ami::MlpModel> ensemble) {
        Problem p = make_problem(model, cost, bounds, sampler, std::move(ensemble));
        auto rollout = ami::make_cpu_rollout(p, threads, isa);
        std::string name = rollout->name();
        return new PyPlanner(std::make_unique<ami::SamplingPlanner>(std::move(p), std::move(rollout)), name);
      },
      py::arg("model"), py::arg("cost"), py::arg("bounds"), py::arg("sampler"), py::arg("threads") = 0,
      py::arg("isa") = "auto", py::arg("ensemble") = std::vector<ami::MlpModel>{},
      py::return_value_policy::take_ownership,
      "ensemble: M >= 2 predictors of model's architecture rolled out in its place (or empty).");
#ifdef AMI_ROBOT_WITH_CUDA
  py::class_<PyCudaPlanner, PyPlanner>(m, "CudaPlanner")
      .def("plan_device", &PyCudaPlanner::plan_device, py::arg("z0"), py::arg("goal"), py::arg("prev_action"),
           py::arg("init_mean"), py::arg("init_std"), py::arg("noise"), py::arg("plan_index"), py::arg("out"),
           py::arg("stream") = 0,
           "Plan from device pointers (0 = absent); out ((3 + iterations)*H*A + 2 floats) = mean | std | "
           "best_actions | cost | best_cost | std_history. Returns when out is written.")
      .def_property_readonly("precision", &PyCudaPlanner::precision)
      .def_property_readonly("device", &PyCudaPlanner::device);
  m.def(
      "cuda_planner",
      [](const ami::MlpModel& model, const ami::CostParams& cost, const ami::ActionBounds& bounds,
         const ami::SamplerParams& sampler, int device, const std::string& precision) {
        Problem p = make_problem(model, cost, bounds, sampler);
        const ami::cuda::Precision prec = ami::cuda::precision_from_name(precision);
        return new PyCudaPlanner(ami::cuda::make_device_planner(std::move(p), device, prec),
                                 std::string("cuda:") + ami::cuda::precision_name(prec));
      },
      py::arg("model"), py::arg("cost"), py::arg("bounds"), py::arg("sampler"), py::arg("device") = 0,
      py::arg("precision") = "fp32", py::return_value_policy::take_ownership);
  m.def("cuda_device_count", &ami::cuda::device_count, "CUDA devices visible to this process (0 without a GPU).");
  m.def(
      "cuda_philox_normal",
      [](uint64_t seed, uint64_t plan_index, uint64_t start, int64_t count, int device) {
        if (count < 0) throw py::value_error("count must be >= 0");
        std::vector<float> values;
        {
          py::gil_scoped_release release;
          values = ami::cuda::philox_normal_device(seed, plan_index, start, static_cast<uint64_t>(count), device);
        }
        FloatArray out = new_array({static_cast<py::ssize_t>(count)});
        std::memcpy(out.mutable_data(), values.data(), sizeof(float) * values.size());
        return out;
      },
      py::arg("seed"), py::arg("plan_index"), py::arg("start"), py::arg("count"), py::arg("device") = 0,
      "philox_normal computed by the CUDA sampler's device code.");
#endif

  m.def(
      "philox_normal",
      [](uint64_t seed, uint64_t plan_index, uint64_t start, int64_t count) {
        FloatArray out = new_array({static_cast<py::ssize_t>(count)});
        ami::philox_normal_fill(seed, plan_index, start, static_cast<uint64_t>(count), out.mutable_data());
        return out;
      },
      py::arg("seed"), py::arg("plan_index"), py::arg("start"), py::arg("count"),
      "Elements [start, start+count) of the standard-normal Philox stream (seed, plan_index).");
  m.def(
      "philox4x32_10",
      [](std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
        const auto r = ami::philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
        return std::array<uint32_t, 4>{r.v[0], r.v[1], r.v[2], r.v[3]};
      },
      py::arg("counter"), py::arg("key"));
  m.def(
      "project_actions",
      [](const FloatArray& actions, const ami::ActionBounds& bounds, std::optional<FloatArray> prev_action) {
        if (actions.ndim() != 3) throw py::value_error("actions: expected shape (n, H, A)");
        const auto A = static_cast<py::ssize_t>(bounds.low.size());
        if (actions.shape(2) != A || static_cast<py::ssize_t>(bounds.high.size()) != A)
          throw py::value_error("actions: last dimension must match the bounds");
        check_projection_bounds(bounds);
        if (prev_action) check_shape(*prev_action, {A}, "prev_action");
        FloatArray out = new_array({actions.shape(0), actions.shape(1), A});
        std::memcpy(out.mutable_data(), actions.data(), sizeof(float) * actions.size());
        const size_t HA = static_cast<size_t>(actions.shape(1)) * A;
        for (py::ssize_t i = 0; i < actions.shape(0); ++i)
          ami::project_sequence(out.mutable_data() + i * HA, static_cast<int>(actions.shape(1)), bounds,
                                prev_action ? prev_action->data() : nullptr);
        return out;
      },
      py::arg("actions"), py::arg("bounds"), py::arg("prev_action") = py::none());
  m.def("build_info", &build_info, "What this extension was compiled with.");
}
