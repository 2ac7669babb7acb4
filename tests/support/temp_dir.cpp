#include "tests/support/temp_dir.hpp"

#include <fstream>
#include <sstream>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace crmsync::test {

temp_dir::temp_dir() {
  std::string tmpl = "/tmp/crmsync-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace crmsync::test
