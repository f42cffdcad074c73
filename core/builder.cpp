#include "builder.h"

#include "process.h"

#include <kbuild/types.hpp>

#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

bool is_build_product(const fs::path& path) {
    const std::string name = path.filename().string();
    const std::string ext = path.extension().string();
    return ext == ".o" || ext == ".ko" || ext == ".cmd" || ext == ".mod" || ext == ".symvers" ||
           name == "modules.order" || name.find(".mod.") != std::string::npos;
}

std::vector<fs::path> find_modules(const fs::path& dir) {
    std::vector<fs::path> modules;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file() && entry.path().extension() == ".ko")
            modules.push_back(entry.path());
    std::sort(modules.begin(), modules.end());
    return modules;
}

// The compiler's first "error:" line (the cause; later ones tend to follow from it), else
// make's last "Error" line: the one-line reason of a failed build.
std::string first_error_line(const fs::path& log) {
    std::ifstream in(log);
    std::string line, make_error;
    while (std::getline(in, line)) {
        if (line.find("error:") != std::string::npos) return line;
        if (line.find("Error ") != std::string::npos) make_error = line;
    }
    return make_error;
}

}  // namespace

void copy_module_source(const fs::path& from, const fs::path& to) {
    if (!fs::is_directory(from)) throw Error(from.string() + ": module source is not a directory");
    fs::create_directories(to);
    for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator();
         ++it) {
        const fs::path relative = fs::relative(it->path(), from);
        const fs::path target = to / relative;
        if (it->is_symlink()) {
            fs::copy_symlink(it->path(), target);
        } else if (it->is_directory()) {
            if (relative.filename().string().front() == '.' && relative.filename() != ".") {
                it.disable_recursion_pending();  // .git and the like
                continue;
            }
            fs::create_directories(target);
        } else if (it->is_regular_file() && !is_build_product(it->path())) {
            fs::copy_file(it->path(), target, fs::copy_options::overwrite_existing);
        }
    }
}

BuildResult LocalBuilder::build(const BuildJob& job) {
    BuildResult result;
    if (!job.compiler.program.empty() && !on_path(job.compiler.program)) {
        result.error = "kernel " + job.release + " was built by " + job.compiler.program + " (" +
                       job.compiler.text + "), which is not installed on this host; use a "
                       "builder that has it (--builder docker)";
        std::ofstream(job.log, std::ios::app) << result.error << '\n';
        return result;
    }
    const fs::path src = job.work_dir / "src";
    copy_module_source(job.module_src, src);

    // The headers' usr/ is laid read-only over the host's /usr in a private mount namespace
    // (a user namespace too when not root), so /usr/src/linux-headers-* and
    // /usr/lib/linux-kbuild-* resolve as on the target system and nothing is written to either.
    const fs::path kernel_in_sandbox = "/" / fs::relative(job.kernel_dir, job.root);
    std::vector<std::string> argv{"unshare", "--mount", "--propagation", "private"};
    if (::geteuid() != 0) argv.insert(argv.begin() + 1, {"--user", "--map-root-user"});
    argv.insert(argv.end(),
                {"--", "sh", "-c",
                 "mount -t overlay kbuild-headers -o \"lowerdir=$1/usr:/usr\" /usr && shift && "
                 "exec \"$@\"",
                 "sh", job.root.string(), "make", "-C", kernel_in_sandbox.string(),
                 "M=" + src.string(), "-j" + std::to_string(std::max(1, job.make_jobs)),
                 "modules"});
    ProcessOptions options;
    options.log = job.log;
    options.timeout = job.timeout;
    options.env = {"LC_ALL=C", "MAKEFLAGS=", "MFLAGS="};
    std::ofstream(job.log, std::ios::app) << "+ make -C " << kernel_in_sandbox.string()
                                          << " M=" << src.string() << " modules\n";
    const ProcessResult run = run_process(argv, options);
    if (run.timed_out) {
        result.error = "timed out after " + std::to_string(job.timeout.count()) + " s";
        return result;
    }
    if (run.exit_code != 0) {
        const std::string line = first_error_line(job.log);
        result.error = "make exited with " + std::to_string(run.exit_code) +
                       (line.empty() ? "" : ": " + line);
        return result;
    }
    result.modules = find_modules(src);
    if (result.modules.empty()) result.error = "the build made no .ko file";
    return result;
}

}  // namespace kbuild
