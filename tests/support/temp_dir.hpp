// A unique directory under /tmp for one test, removed with its contents
// when the object goes away.
#pragma once

#include <string>

namespace crmsync::test {

class temp_dir {
public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

} // namespace crmsync::test
