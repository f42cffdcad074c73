#include "build/builder.h"

#include "build/docker.h"
#include "kernel/kernel_arch.h"
#include "util/interrupt.h"
#include "util/process.h"
#include "util/strings.h"

#include <kbuild/types.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

bool is_build_product(const fs::path& path) {
    const std::string name = path.filename().string();
    const std::string ext = path.extension().string();
    return ext == ".o" || ext == ".ko" || ext == ".cmd" || ext == ".mod" || ext == ".symvers" ||
           name == "modules.order" || name.find(".mod.") != std::string::npos;
}

std::vector<std::string> made_modules(const fs::path& dir) {
    std::vector<std::string> made;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file() && entry.path().extension() == ".ko")
            made.push_back(fs::relative(entry.path(), dir).string());
    std::sort(made.begin(), made.end());
    return made;
}

std::string listed(const std::vector<std::string>& files) {
    if (files.empty()) return "nothing";
    std::string text;
    for (size_t i = 0; i < files.size() && i < 4; ++i) text += (i ? ", " : "") + files[i];
    if (files.size() > 4) text += " and " + std::to_string(files.size() - 4) + " more";
    return text;
}

bool inside_tree(const std::string& relative, const std::vector<std::string>& trees) {
    for (const auto& tree : trees)
        if (relative.size() > tree.size() && relative.compare(0, tree.size(), tree) == 0 &&
            relative[tree.size()] == '/')
            return true;
    return false;
}

std::string readable(std::string line) {
    constexpr size_t kReadable = 240;
    const auto first = line.find_first_not_of(" \t");
    line.erase(0, first == std::string::npos ? line.size() : first);
    if (line.size() > kReadable) line = line.substr(0, kReadable - 3) + "...";
    return line;
}

// How a finished make ended, for either builder: the modules, or Error saying why not.
// `build_dir`: the module's directory as the log names it.
std::vector<fs::path> finished(const BuildJob& job, const fs::path& src, const std::string& build_dir, bool timed_out,
                               int exit_code) {
    if (timed_out) throw Error("timed out after " + std::to_string(job.timeout.count()) + " s");
    if (exit_code != 0) {
        const std::string line = build_error_line(job.log, build_dir, job.nested_trees);
        throw Error("make exited with " + std::to_string(exit_code) + (line.empty() ? "" : ": " + line));
    }
    return select_modules(src, job);
}

}  // namespace

std::string build_error_line(const fs::path& log, const std::string& build_dir,
                             const std::vector<std::string>& nested_trees) {
    // "file:line:col: error: ...", "cc1: error: ...", "gcc-12: fatal error: ..." start a line;
    // a probe's output that a Makefile echoes with $(info) starts with its own tag instead.
    static const std::regex diagnostic(R"(^(\S+?):(?:\d+:)*\s?(?:fatal )?error: )");
    const std::string prefix = build_dir.empty() || build_dir.back() == '/' ? build_dir : build_dir + "/";
    std::ifstream in(log);
    std::string line, stop, modpost, make_error;
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_search(line, m, diagnostic)) {
            std::string file = m[1];
            if (!prefix.empty() && file.compare(0, prefix.size(), prefix) == 0) file.erase(0, prefix.size());
            if (!inside_tree(file, nested_trees)) return readable(line);
        }
        const bool make_said = line.find("*** ") != std::string::npos;
        // "Kbuild:4: *** <message>.  Stop." is a Makefile's own $(error); "*** [x] Error 2" only
        // reports that a step failed.
        if (make_said && line.find("] Error ") == std::string::npos && stop.empty()) stop = line;
        if (make_said && line.find("] Error ") != std::string::npos) make_error = line;
        if (line.rfind("ERROR: modpost: ", 0) == 0 && modpost.empty()) modpost = line;
    }
    return readable(!stop.empty() ? stop : !modpost.empty() ? modpost : make_error);
}

std::vector<fs::path> select_modules(const fs::path& src, const BuildJob& job) {
    const std::vector<std::string> made = made_modules(src);
    std::vector<fs::path> chosen;
    if (job.modules.empty()) {
        for (const auto& file : made)
            if (file.find('/') == std::string::npos) chosen.push_back(src / file);
        if (chosen.empty())
            throw Error("the build made no .ko file in the module's directory (it made " + listed(made) + ")");
        return chosen;
    }
    for (const auto& name : job.modules) {
        const std::string file = name + ".ko";
        if (fs::is_regular_file(src / file)) {
            chosen.push_back(src / file);
            continue;
        }
        if (!job.modules_required) continue;
        std::vector<std::string> alike;
        if (name.find('/') == std::string::npos)
            for (const auto& m : made)
                if (fs::path(m).filename() == file) alike.push_back(m);
        if (alike.empty()) throw Error("the build made no " + file + " (it made " + listed(made) + ")");
        if (alike.size() > 1)
            throw Error(file + ": the build made " + std::to_string(alike.size()) + " modules of that name (" +
                        listed(alike) + "); name one with --module DIR/" + name);
        chosen.push_back(src / alike.front());
    }
    if (chosen.empty()) {
        std::vector<std::string> declared;
        for (const auto& name : job.modules) declared.push_back(name + ".ko");
        throw Error("the build made none of the modules the source declares (" + listed(declared) + "; it made " +
                    listed(made) + ")");
    }
    return chosen;
}

namespace {

// Containers carry this process's id, so an interrupted kbuild removes exactly its own.
const std::string& owner_label() {
    static const std::string pid = std::to_string(::getpid());
    return pid;
}

// The first line of a file, empty when it cannot be read.
std::string first_line(const char* path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return trim(line);
}

// This machine and this boot of it, as container labels: a container of this machine labelled
// with another boot was left by a kbuild that died with that boot (the machine stopped, so did
// the daemon, and the container stayed, exited). Without a machine id (kbuild in a container of
// its own), the host name: never another's.
const std::map<std::string, std::string>& boot_labels() {
    static const std::map<std::string, std::string> labels = [] {
        std::string machine = first_line("/etc/machine-id");
        if (machine.empty()) machine = first_line("/var/lib/dbus/machine-id");
        if (machine.empty()) {
            char host[256] = {};
            ::gethostname(host, sizeof host - 1);
            machine = std::string("host:") + host;
        }
        return std::map<std::string, std::string>{{"kbuild.machine", machine},
                                                  {"kbuild.boot", first_line("/proc/sys/kernel/random/boot_id")}};
    }();
    return labels;
}

// Removes the containers kbuild runs on this machine left in earlier boots; once a process.
void remove_containers_of_earlier_boots(const Docker& docker) {
    static std::once_flag once;
    std::call_once(once, [&docker] {
        const auto& ours = boot_labels();
        if (ours.at("kbuild.boot").empty()) return;
        int removed = 0;
        try {
            for (const auto& c : docker.list_containers({{"kbuild", "build"}, *ours.find("kbuild.machine")})) {
                const auto boot = c.labels.find("kbuild.boot");
                if (boot == c.labels.end() || boot->second == ours.at("kbuild.boot")) continue;
                docker.remove_container(c.id);
                ++removed;
            }
        } catch (const Error& e) {
            spdlog::warn("{} (containers left by an earlier boot of this machine stay)", e.what());
        }
        if (removed)
            spdlog::info("docker: removed {} container{} left by kbuild when this machine last stopped", removed,
                         removed == 1 ? "" : "s");
    });
}

void make_writable_by_anyone(const fs::path& dir) {
    fs::permissions(dir, fs::perms::all, fs::perm_options::add);
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (!entry.is_symlink())
            fs::permissions(entry.path(),
                            entry.is_directory()
                                ? fs::perms::all
                                : fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                      fs::perms::group_write | fs::perms::others_read | fs::perms::others_write,
                            fs::perm_options::add);
}

// make's compiler arguments in an image: its CC (the kernel's own command when it names none),
// and LLVM=1 for a kernel built by clang (the whole LLVM toolchain, as the kernel was).
// HOSTCC too: a source kernel's own programs (fixdep, modpost) are built by it, and an image
// may have no plain "gcc". Cross-compiling, ARCH= and CROSS_COMPILE= (the image's prefix for
// the architecture) join them, CC is the cross compiler (clang is its own: the prefix gives its
// target) and HOSTCC stays the image's own.
std::vector<std::string> compiler_args(const BuilderImage& image, const KernelCompiler& compiler,
                                       const std::string& cross) {
    const std::string cc = image.cc.empty() ? compiler.program : image.cc;
    std::vector<std::string> args{"CC=" + cc, "HOSTCC=" + cc};
    if (!cross.empty()) {
        const std::string& prefix = image.cross.at(cross);
        if (!compiler.clang) args.front() = "CC=" + prefix + cc;
        args.insert(args.end(), {"ARCH=" + cross, "CROSS_COMPILE=" + prefix});
    }
    if (compiler.clang) args.push_back("LLVM=1");
    return args;
}

// Why a source kernel's preparation failed, from its log: the first line saying so in words
// (a compiler's error, a missing program or file, a Makefile's own "*** ..."), else make's.
std::string prepare_error_line(const fs::path& log) {
    static const std::regex said(R"((error:|: not found|No such file or directory|\*\*\* [^\[]))");
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);)
        if (std::regex_search(line, said)) return readable(trim(line));
    return build_error_line(log, "/kernel", {});
}

}  // namespace

BuilderImage DockerBuilder::image_for(const KernelCompiler& compiler, const std::string& cross,
                                      const fs::path& log) const {
    std::string why;
    const auto image = choose_builder_image(images_, compiler, family_, why, cross);
    std::ofstream(log, std::ios::app) << "kbuild: " << why << '\n';
    if (!image) throw Error(why);
    return *image;
}

DockerBuilder::DockerBuilder(const Docker& docker, std::vector<BuilderImage> images, std::string family)
    : docker_(docker), images_(std::move(images)), family_(std::move(family)), cleanup_(add_cleanup([&docker] {
          for (const auto& id : docker.containers({{"kbuild.pid", owner_label()}})) docker.remove_container(id);
      })) {
    remove_containers_of_earlier_boots(docker_);
}

DockerBuilder::~DockerBuilder() {
    remove_cleanup(cleanup_);
}

std::string DockerBuilder::name(const BuildJob& job) const {
    std::string why;
    const auto image = choose_builder_image(images_, job.compiler, family_, why, job.cross);
    return image ? image->image : "docker (no image)";
}

std::string DockerBuilder::choice(const BuildJob& job) const {
    std::string why;
    choose_builder_image(images_, job.compiler, family_, why, job.cross);
    return why;
}

std::vector<fs::path> DockerBuilder::build(const BuildJob& job) {
    const BuilderImage image = image_for(job.compiler, job.cross, job.log);
    const fs::path src = job.work_dir / "src";
    copy_module_source(job.module_src, src);
    make_writable_by_anyone(src);

    ContainerSpec spec;
    spec.image = image.image;
    // The kernel's trees go where its Makefiles and symlinks expect them, read-only; a bundle's
    // tree anywhere, as it is; a source kernel's output tree at /kernel, its source beside.
    const fs::path tree_in_container = job.self_contained ? "/kernel" : "/";
    if (job.self_contained) {
        spec.mounts.push_back({fs::canonical(job.root), tree_in_container, true});
        if (!job.source_dir.empty()) spec.mounts.push_back({fs::canonical(job.source_dir), kSourceMount, true});
    } else {
        for (const char* dir : {"usr/src", "usr/lib"}) {
            std::error_code ec;
            for (const auto& entry : fs::directory_iterator(job.root / dir, ec))
                spec.mounts.push_back({fs::canonical(entry.path()),
                                       "/" + std::string(dir) + "/" + entry.path().filename().string(), true});
        }
    }
    spec.mounts.push_back({src, "/build", false});
    const std::string kernel_dir = (tree_in_container / fs::relative(job.kernel_dir, job.root)).string();
    if (job.foreign_program) rebuild_host_programs(job, image, spec, kernel_dir);
    // KERNELDIR: drivers whose Makefile builds probe modules of its own (Falco's) build them
    // against $(KERNELDIR), by default the running kernel's tree, which is not this one.
    spec.command = {"make", "-C", kernel_dir, "M=/build", "-j" + std::to_string(std::max(1, job.make_jobs))};
    for (const auto& arg : compiler_args(image, job.compiler, job.cross)) spec.command.push_back(arg);
    spec.command.push_back("KERNELDIR=" + kernel_dir);
    // Debug info names the headers where the distro installs them, wherever the tree lies: a
    // module built from a bundle is the module built from the packages.
    if (job.self_contained && job.source_dir.empty()) spec.command.push_back("KCFLAGS=-ffile-prefix-map=/kernel/=/");
    if (job.modpost_warn) spec.command.push_back("KBUILD_MODPOST_WARN=1");
    spec.command.push_back("modules");
    spec.working_dir = "/build";
    const ContainerResult run = run_logged(spec, job.release, job.log, job.timeout);
    return finished(job, src, "/build", run.timed_out, run.exit_code);
}

namespace {

// Kbuild's sed-offsets: "->NAME VALUE" markers of an assembler listing as #define lines.
constexpr const char* kSedOffsets =
    R"sed(s:^[[:space:]]*\.ascii[[:space:]]*"\(.*\)".*:\1:; /^->/{s:->#\(.*\):/* \1 */:; )sed"
    R"sed(s:^->\([^ ]*\) [\$#]*\([^ ]*\) \(.*\):#define \1 \2 /* \3 */:; s:->::; p;})sed";

// The tree's host programs rebuilt by this host's compiler from the tree's own sources, as
// Kbuild builds them: fixdep; elfconfig.h and devicetable-offsets.h when the tree lacks them
// (they describe the target: made by the cross compiler, through Kbuild); modpost; genksyms when
// its sources are there. $1 scripts, $2 the kernel tree, $3 HOSTCC, then make's arguments.
constexpr const char* kRebuildScript = R"sh(set -e
s=$1 k=$2 hostcc=$3; shift 3
cd "$s"
"$hostcc" -O2 -o basic/fixdep basic/fixdep.c
if [ ! -f mod/elfconfig.h ] || [ ! -f mod/devicetable-offsets.h ]; then
  t=$(mktemp -d)
  cp mod/devicetable-offsets.c "$t/"
  : > "$t/empty.c"
  : > "$t/Kbuild"
  make -C "$k" M="$t" "$@" devicetable-offsets.s empty.o
  if [ ! -f mod/elfconfig.h ]; then
    "$hostcc" -O2 -o "$t/mk_elfconfig" mod/mk_elfconfig.c
    "$t/mk_elfconfig" < "$t/empty.o" > mod/elfconfig.h
  fi
  if [ ! -f mod/devicetable-offsets.h ]; then
    { echo '#ifndef __DEVICETABLE_OFFSETS_H__'; echo '#define __DEVICETABLE_OFFSETS_H__';
      sed -ne "$KBUILD_SED_OFFSETS" "$t/devicetable-offsets.s"; echo '#endif'; } > mod/devicetable-offsets.h
  fi
fi
extra=
[ ! -f mod/symsearch.c ] || extra=mod/symsearch.c
"$hostcc" -O2 -I include -o mod/modpost mod/modpost.c mod/file2alias.c mod/sumversion.c $extra
if [ -f genksyms/genksyms.c ] && [ -f genksyms/parse.y ] && [ -f genksyms/lex.l ]; then
  bison -o genksyms/parse.tab.c -t -l --defines=genksyms/parse.tab.h genksyms/parse.y
  flex -o genksyms/lex.lex.c -L genksyms/lex.l
  "$hostcc" -O2 -I genksyms -o genksyms/genksyms genksyms/genksyms.c genksyms/parse.tab.c genksyms/lex.lex.c
fi
)sh";

}  // namespace

void DockerBuilder::rebuild_host_programs(const BuildJob& job, const BuilderImage& image, ContainerSpec& spec,
                                          const std::string& kernel_dir) const {
    const ForeignProgram& foreign = *job.foreign_program;
    for (const char* source : {"basic/fixdep.c", "mod/modpost.c", "mod/file2alias.c", "mod/sumversion.c"})
        if (!fs::is_regular_file(foreign.scripts / source)) {
            const std::string why = foreign.why(job.kernel_dir) + "; the tree has no scripts/" + source +
                                    " to rebuild it from for this host";
            std::ofstream(job.log, std::ios::app) << why << '\n';
            throw Error(why);
        }
    // A writable copy of the tree's scripts/ where the tree has it; the build then runs the
    // rebuilt programs.
    const fs::path copy = job.work_dir / "host-scripts";
    fs::copy(foreign.scripts, copy, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    make_writable_by_anyone(copy);
    const fs::path tree_in_container = job.self_contained ? "/kernel" : "/";
    const std::string scripts = (tree_in_container / fs::relative(foreign.scripts, job.root)).string();
    spec.mounts.push_back({copy, scripts, false});
    std::ofstream(job.log, std::ios::app) << "kbuild: " << foreign.program << " is a program for " << foreign.arch
                                          << ": the tree's host programs are rebuilt for this host from its sources\n";
    ContainerSpec rebuild = spec;
    const std::vector<std::string> args = compiler_args(image, job.compiler, job.cross);
    const std::string hostcc = args[1].substr(std::string("HOSTCC=").size());
    rebuild.command = {"sh", "-c", kRebuildScript, "rebuild", scripts, kernel_dir, hostcc};
    rebuild.command.insert(rebuild.command.end(), args.begin(), args.end());
    rebuild.working_dir = "/build";
    rebuild.env = {std::string("KBUILD_SED_OFFSETS=") + kSedOffsets};
    const ContainerResult run = run_logged(rebuild, job.release, job.log, job.timeout);
    if (run.timed_out)
        throw Error("rebuilding the tree's host programs timed out after " + std::to_string(job.timeout.count()) +
                    " s");
    if (run.exit_code != 0) {
        const std::string line = prepare_error_line(job.log);
        throw Error("rebuilding the tree's host programs for this host failed" + (line.empty() ? "" : ": " + line));
    }
}

void DockerBuilder::prepare(const PrepareJob& job) {
    const BuilderImage image = image_for(job.compiler, job.cross, job.log);
    make_writable_by_anyone(job.out_dir);
    ContainerSpec spec;
    spec.image = image.image;
    spec.mounts = {{fs::canonical(job.source_dir), kSourceMount, true}, {fs::canonical(job.out_dir), "/kernel", false}};
    // Two makes: one run given a config target and a build target builds the second with the
    // config it had before the first ran.
    spec.command = {"sh",         "-c",        "make \"$@\" olddefconfig && make \"$@\" modules_prepare", "make", "-C",
                    kSourceMount, "O=/kernel", "-j" + std::to_string(std::max(1, job.make_jobs))};
    for (const auto& arg : compiler_args(image, job.compiler, job.cross)) spec.command.push_back(arg);
    spec.command.push_back("LOCALVERSION=" + job.localversion);
    spec.working_dir = "/kernel";
    const ContainerResult run = run_logged(spec, job.release, job.log, job.timeout);
    if (run.timed_out)
        throw Error("make modules_prepare timed out after " + std::to_string(job.timeout.count()) + " s");
    if (run.exit_code != 0) {
        const std::string line = prepare_error_line(job.log);
        throw Error("make modules_prepare exited with " + std::to_string(run.exit_code) +
                    (line.empty() ? "" : ": " + line));
    }
}

ContainerResult DockerBuilder::run_logged(ContainerSpec spec, const std::string& release, const fs::path& log,
                                          std::chrono::seconds timeout) const {
    spec.env.insert(spec.env.begin(), {"HOME=/tmp", "LC_ALL=C"});
    spec.user = "1000:1000";
    spec.network = false;
    spec.cpus = cpus;
    spec.memory_bytes = memory_bytes;
    spec.labels = {{"kbuild", "build"}, {"kbuild.pid", owner_label()}, {"kbuild.release", release}};
    spec.labels.insert(boot_labels().begin(), boot_labels().end());
    {
        std::ofstream out(log, std::ios::app);
        out << "+ docker run --network none " << spec.image;
        for (const auto& a : spec.command) out << ' ' << a;
        out << '\n';
    }
    const ContainerResult run = docker_.run(spec, timeout);
    std::ofstream(log, std::ios::app) << run.output;
    return run;
}

void copy_module_source(const fs::path& from, const fs::path& to) {
    if (!fs::is_directory(from)) throw Error(from.string() + ": module source is not a directory");
    fs::create_directories(to);
    for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator(); ++it) {
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

namespace {

// A root kbuild's make runs as nobody:nogroup: neither it nor whatever a Makefile runs holds
// uid 0 or a capability on the host.
constexpr uid_t kBuildUid = 65534;
constexpr gid_t kBuildGid = 65534;

void give_to(const fs::path& dir, uid_t uid, gid_t gid) {
    if (::lchown(dir.c_str(), uid, gid) != 0) throw Error(dir.string() + ": chown: " + errno_text(errno));
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (::lchown(entry.path().c_str(), uid, gid) != 0)
            throw Error(entry.path().string() + ": chown: " + errno_text(errno));
}

// bwrap arguments that put `from`'s entries (but those in `leave_out`) at `to`, read-only;
// symlinks are made anew.
void bind_entries(std::vector<std::string>& args, const fs::path& from, const fs::path& to,
                  const std::set<std::string>& leave_out) {
    std::error_code ec;
    std::set<std::string> names;  // sorted: the same arguments each time
    for (const auto& entry : fs::directory_iterator(from, ec)) names.insert(entry.path().filename().string());
    for (const auto& name : names) {
        if (leave_out.count(name)) continue;
        if (fs::is_symlink(from / name))
            args.insert(args.end(), {"--symlink", fs::read_symlink(from / name).string(), (to / name).string()});
        else
            args.insert(args.end(), {"--ro-bind", (from / name).string(), (to / name).string()});
    }
}

// The sandbox's `host_dir` (/usr/src, /usr/lib): a read-only tmpfs holding the host's entries
// with the tree's laid over them, as the overlay the local builder used to mount did.
void lay_over(std::vector<std::string>& args, const fs::path& tree_dir, const fs::path& host_dir) {
    if (!fs::is_directory(tree_dir)) return;
    std::set<std::string> tree;
    for (const auto& entry : fs::directory_iterator(tree_dir)) tree.insert(entry.path().filename().string());
    args.insert(args.end(), {"--tmpfs", host_dir.string()});
    bind_entries(args, host_dir, host_dir, tree);
    bind_entries(args, tree_dir, host_dir, {});
    args.insert(args.end(), {"--remount-ro", host_dir.string()});
}

// How bwrap starts: as root, bwrap makes the namespaces and mounts with root's rights (it reaches
// a cache or bundle under a closed directory) but no user namespace, and keeps for its child
// only what setpriv needs to become nobody; anyone else gets a user namespace too.
std::vector<std::string> bwrap_namespaces(bool as_root) {
    if (as_root)
        return {"bwrap",         "--unshare-net",        "--unshare-pid",     "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session"};
    return {"bwrap", "--unshare-all", "--die-with-parent", "--new-session"};
}

void run_as_nobody(std::vector<std::string>& args) {
    args.insert(args.end(), {"--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "setpriv",
                             "--reuid=" + std::to_string(kBuildUid), "--regid=" + std::to_string(kBuildGid),
                             "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--"});
}

// Empty when bwrap can make the build's namespaces here; else why not, in its own words.
std::string sandbox_refused(bool as_root) {
    std::vector<std::string> argv = bwrap_namespaces(as_root);
    argv.insert(argv.end(), {"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"});
    if (as_root)
        run_as_nobody(argv);
    else
        argv.push_back("--");
    argv.push_back("true");
    ProcessOptions options;
    options.cwd = "/";
    options.timeout = std::chrono::seconds(60);
    const ProcessResult probe = run_process(argv, options);
    if (probe.exit_code == 0) return {};
    const std::string said = probe.err.substr(0, probe.err.find('\n'));
    return said.empty() ? "bwrap exited with " + std::to_string(probe.exit_code) : said;
}

}  // namespace

void LocalBuilder::prepare(const PrepareJob& job) {
    const std::string why = "kernel " + job.release +
                            ": a source kernel is prepared in a container (--builder docker), not by the local builder";
    std::ofstream(job.log, std::ios::app) << why << '\n';
    throw Error(why);
}

std::vector<fs::path> LocalBuilder::build(const BuildJob& job) {
    const auto fail = [&](const std::string& why) {
        std::ofstream(job.log, std::ios::app) << why << '\n';
        return Error(why);
    };
    if (!job.compiler.program.empty() && !on_path(job.compiler.program))
        throw fail("kernel " + job.release + " was built by " + job.compiler.program + " (" + job.compiler.text +
                   "), which is not installed on this host; use a builder that has it (--builder docker)");
    if (job.foreign_program)
        throw fail(job.foreign_program->why(job.kernel_dir) +
                   "; a container build (--builder docker) rebuilds them from the tree's sources");
    // Cross-compiling here takes Debian's cross tools of the kernel's compiler
    // (gcc-12-aarch64-linux-gnu: aarch64-linux-gnu-gcc-12); clang is its own cross compiler.
    const std::string prefix = job.cross.empty() ? "" : cross_tools_prefix(job.cross);
    const std::string cross_cc =
        job.compiler.clang || job.compiler.program.empty() ? "" : prefix + job.compiler.program;
    if (!job.cross.empty() && (prefix.empty() || (!cross_cc.empty() && !on_path(cross_cc))))
        throw fail("kernel " + job.release + " is for " + job.cross + ": " +
                   (prefix.empty() ? "kbuild knows no cross tools for it"
                                   : cross_cc + " (the cross compiler of its " + job.compiler.name() +
                                         ") is not installed on this host") +
                   "; use a builder that has it (--builder docker)");
    // The build runs sandboxed or not at all.
    const bool as_root = ::geteuid() == 0;
    if (!on_path("bwrap")) throw fail("local builder: bwrap not found (install bubblewrap)");
    if (as_root && !on_path("setpriv")) throw fail("local builder: setpriv not found (install util-linux)");
    if (const std::string refused = sandbox_refused(as_root); !refused.empty())
        throw fail("local builder: bwrap cannot make the build's sandbox: " + refused);
    const fs::path src = job.work_dir / "src";
    copy_module_source(job.module_src, src);
    if (as_root) give_to(src, kBuildUid, kBuildGid);

    // The sandbox's root is bwrap's tmpfs, read-only once laid out: the host's top entries bound
    // read-only, fresh /dev and /proc, throw-away /tmp (HOME too) and /run (the host's sockets
    // live there), the module's copy at /build (the one writable host path, as in a container),
    // a bundle's tree at /kernel; the headers' usr/src and usr/lib entries laid over the host's,
    // so /usr/src/linux-headers-* and /usr/lib/linux-kbuild-* resolve as on the target system.
    const fs::path kernel_in_sandbox =
        (job.self_contained ? fs::path("/kernel") : fs::path("/")) / fs::relative(job.kernel_dir, job.root);
    std::vector<std::string> argv = bwrap_namespaces(as_root);
    bind_entries(argv, "/", "/", {"dev", "proc", "tmp", "run", "build", "kernel", "kernel-source"});
    argv.insert(argv.end(),
                {"--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp", "--tmpfs", "/run"});
    if (job.self_contained) {
        argv.insert(argv.end(), {"--ro-bind", job.root.string(), "/kernel"});
        if (!job.source_dir.empty()) argv.insert(argv.end(), {"--ro-bind", job.source_dir.string(), kSourceMount});
    } else {
        lay_over(argv, job.root / "usr/src", "/usr/src");
        lay_over(argv, job.root / "usr/lib", "/usr/lib");
    }
    const char* path = std::getenv("PATH");
    argv.insert(argv.end(), {"--bind", src.string(), "/build", "--remount-ro", "/", "--chdir", "/build", "--clearenv",
                             "--setenv", "PATH", path && *path ? path : "/usr/local/bin:/usr/bin:/bin", "--setenv",
                             "HOME", "/tmp", "--setenv", "LC_ALL", "C"});
    if (as_root)
        run_as_nobody(argv);
    else
        argv.push_back("--");
    argv.insert(argv.end(),
                {"make", "-C", kernel_in_sandbox.string(), "M=/build",
                 "-j" + std::to_string(std::max(1, job.make_jobs)), "KERNELDIR=" + kernel_in_sandbox.string()});
    // Debug info names the headers where the distro installs them, wherever the tree lies: a
    // module built from a bundle is the module built from the packages.
    if (job.self_contained && job.source_dir.empty()) argv.push_back("KCFLAGS=-ffile-prefix-map=/kernel/=/");
    if (job.modpost_warn) argv.push_back("KBUILD_MODPOST_WARN=1");
    if (!job.cross.empty()) {
        if (!cross_cc.empty()) argv.insert(argv.end(), {"CC=" + cross_cc, "HOSTCC=" + job.compiler.program});
        argv.insert(argv.end(), {"ARCH=" + job.cross, "CROSS_COMPILE=" + prefix});
    }
    if (job.compiler.clang) argv.push_back("LLVM=1");
    argv.push_back("modules");

    ProcessOptions options;
    options.log = job.log;
    options.timeout = job.timeout;
    options.cwd = "/";
    std::uintmax_t log_before = 0;
    {
        std::ofstream log(job.log, std::ios::app);
        log << "kbuild: sandbox: bwrap, make as uid " << (as_root ? kBuildUid : ::geteuid())
            << ", the host read-only, no network, only the module's copy writable (" << src.string() << " at /build)\n"
            << "+ make -C " << kernel_in_sandbox.string() << " M=/build modules\n";
        log.flush();
        log_before = static_cast<std::uintmax_t>(log.tellp());
    }
    const ProcessResult run = run_process(argv, options);
    if (run.exit_code != 0 && !run.timed_out) {
        // bwrap and setpriv speak before make does: what they say first is why there was no
        // sandbox.
        std::ifstream log(job.log);
        log.seekg(static_cast<std::streamoff>(log_before));
        std::string line;
        std::getline(log, line);
        if (line.rfind("bwrap: ", 0) == 0 || line.rfind("setpriv: ", 0) == 0) throw fail("local builder: " + line);
    }
    return finished(job, src, "/build", run.timed_out, run.exit_code);
}

}  // namespace kbuild
