# Install ami_robot as a ROS 2 package into the Python environment's prefix, where ament_index
# (AMENT_PREFIX_PATH), `ros2 run` and `ros2 launch` look:
#   share/ament_index/resource_index/packages/ami_robot   the ament index entry
#   share/ami_robot/{package.xml, launch/*.launch.py, params/*.yaml}
#   share/ami_robot/{rviz/ami_robot.rviz, foxglove/ami_robot.json}   viewer configs of the brain's topics
#   lib/ami_robot/<executable>                           launchers running this environment's Python
# With scikit-build-core, files under ${SKBUILD_DATA_DIR} land in the environment prefix.

if(DEFINED SKBUILD_DATA_DIR)
  set(AMI_ROBOT_ROS_PREFIX "${SKBUILD_DATA_DIR}")
else()
  set(AMI_ROBOT_ROS_PREFIX "${CMAKE_INSTALL_PREFIX}")
endif()
if(NOT DEFINED Python_EXECUTABLE)
  find_package(Python REQUIRED COMPONENTS Interpreter)
endif()

get_filename_component(_ami_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(_ami_share "${AMI_ROBOT_ROS_PREFIX}/share/ami_robot")
install(FILES "${_ami_root}/resource/ami_robot"
        DESTINATION "${AMI_ROBOT_ROS_PREFIX}/share/ament_index/resource_index/packages")
install(FILES "${_ami_root}/package.xml" DESTINATION "${_ami_share}")
install(DIRECTORY "${_ami_root}/launch/" DESTINATION "${_ami_share}/launch"
        FILES_MATCHING PATTERN "*.launch.py" PATTERN "params" EXCLUDE PATTERN "rviz" EXCLUDE PATTERN "foxglove" EXCLUDE
        PATTERN "__pycache__" EXCLUDE)
install(DIRECTORY "${_ami_root}/launch/params/" DESTINATION "${_ami_share}/params"
        FILES_MATCHING PATTERN "*.yaml")
install(DIRECTORY "${_ami_root}/launch/rviz/" DESTINATION "${_ami_share}/rviz" FILES_MATCHING PATTERN "*.rviz")
install(DIRECTORY "${_ami_root}/launch/foxglove/" DESTINATION "${_ami_share}/foxglove" FILES_MATCHING PATTERN "*.json")

# ami_robot_ros_executable(<name> <python module with main()>): a launcher running the Python of the
# prefix it is installed in (<prefix>/bin/python, a venv's), else the Python that built it.
function(ami_robot_ros_executable name module)
  set(_launcher "${CMAKE_CURRENT_BINARY_DIR}/ros_executables/${name}")
  file(WRITE "${_launcher}" "#!/bin/sh\n"
    "prefix=\"$(cd \"$(dirname \"$0\")/../..\" && pwd)\"\n"
    "python=\"$prefix/bin/python\"\n"
    "[ -x \"$python\" ] || python=\"${Python_EXECUTABLE}\"\n"
    "exec \"$python\" -m ${module} \"$@\"\n")
  install(PROGRAMS "${_launcher}" DESTINATION "${AMI_ROBOT_ROS_PREFIX}/lib/ami_robot")
endfunction()

ami_robot_ros_executable(brain ami_robot.ros.brain_node)
ami_robot_ros_executable(perception ami_robot.ros.perception_node)
ami_robot_ros_executable(planner ami_robot.ros.planner_node)
ami_robot_ros_executable(configurator ami_robot.ros.configurator_node)
ami_robot_ros_executable(memory ami_robot.ros.memory_node)
ami_robot_ros_executable(recorder ami_robot.ros.recorder_node)
ami_robot_ros_executable(foxglove ami_robot.ros.foxglove_node)
ami_robot_ros_executable(sim_robot ami_sim.ros.robot_node)
ami_robot_ros_executable(teleop ami_sim.ros.teleop_node)
