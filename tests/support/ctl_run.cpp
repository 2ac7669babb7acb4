#include "tests/support/ctl_run.hpp"

#include "tests/support/temp_dir.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace crmsync::e2e {

ctl_result run_ctl(const std::vector<std::string>& args,
                   const std::string& script, const std::string& cwd) {
  test::temp_dir dir;
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
    std::vector<char*> argv{const_cast<char*>(CRMSYNCCTL_PATH)};
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(CRMSYNCCTL_PATH, argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ctl_result r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_whole_file(out);
  r.err = test::read_whole_file(err);
  return r;
}

} // namespace crmsync::e2e
