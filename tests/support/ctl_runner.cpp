#include "tests/support/ctl_runner.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/support/temp_dir.hpp"

namespace crmsync::e2e {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void exec_ctl(const std::vector<std::string>& args) {
  std::vector<char*> argv{const_cast<char*>(CRMSYNCCTL_PATH)};
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(CRMSYNCCTL_PATH, argv.data());
  _exit(127);
}

ctl_result run_ctl(const std::vector<std::string>& args,
                   const std::string& script, const std::string& cwd) {
  crmsync::test::temp_dir dir;
  auto in = dir.path() + "/in", out = dir.path() + "/out",
       err = dir.path() + "/err";
  std::ofstream(in) << script;
  pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error("cannot fork crmsyncctl");
  if (pid == 0) {
    int i = open(in.c_str(), O_RDONLY);
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(i, 0);
    dup2(o, 1);
    dup2(e, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0)
      _exit(126);
    unsetenv("CRMSYNC_ADMIN_TOKEN");
    unsetenv("CRMSYNC_ADMIN_TOKEN_FILE");
    exec_ctl(args);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ctl_result r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

} // namespace crmsync::e2e
