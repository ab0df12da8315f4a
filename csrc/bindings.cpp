#include <pybind11/pybind11.h>

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "ami_robot accelerated core";
  m.def("build_info", [] {
    py::dict info;
    info["version"] = AMI_ROBOT_VERSION;
    info["cuda"] = false;
    return info;
  });
}
