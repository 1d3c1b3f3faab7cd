# The PyPI ROS 2 wheels export CMake targets whose INTERFACE_INCLUDE_DIRECTORIES name the Python
# headers of the machine that built the wheels (/opt/python/cp311-cp311/include/python3.11).
# This file replaces that path with this interpreter's headers (never creates it; RECIPES
# pitfall 3). The rewrite is deferred to the end of the including directory, after every
# find_package() and rosidl_generate_interfaces() has imported its targets, so it works both
# from our CMakeLists.txt (include()) and for another package's unmodified CMakeLists.txt
# (cmake -DCMAKE_PROJECT_INCLUDE=<this file>, as the launch tests build composition_interfaces).
# Not needed, and not used, with an apt/source ROS 2 install.
function(_para_ros_fix_wheel_includes)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module)
  get_property(_targets DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(_imported DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_tgt IN LISTS _targets _imported)
    get_target_property(_incs ${_tgt} INTERFACE_INCLUDE_DIRECTORIES)
    if(_incs AND "${_incs}" MATCHES "/opt/python/")
      list(FILTER _incs EXCLUDE REGEX "^/opt/python/")
      list(APPEND _incs ${Python3_INCLUDE_DIRS})
      set_target_properties(${_tgt} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_incs}")
      message(STATUS "rewrote the wheel Python include path of ${_tgt}")
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" CALL _para_ros_fix_wheel_includes)
