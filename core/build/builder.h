// Builders turn a kernel header tree plus a module source into .ko files. The local builder
// runs the kernel's own Makefiles on this host in a bubblewrap sandbox (an unprivileged user,
// the host read-only, no network), with the unpacked headers' /usr/src and /usr/lib entries laid
// over the host's, so their absolute paths resolve without touching the host's /usr.
#pragma once

#include "build/docker.h"
#include "build/images.h"
#include "kernel/compiler.h"
#include "kernel/kernel_arch.h"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace kbuild {

// Where a source kernel lies while it is prepared and while modules are built against it: its
// source read-only at kSourceMount, its output tree (make O=) at /kernel. The paths are the same
// both times: the output tree's Makefile names the source by path.
inline constexpr const char* kSourceMount = "/kernel-source";

struct BuildJob {
    std::string release;
    std::filesystem::path root;        // unpacked packages: holds usr/...
    std::filesystem::path kernel_dir;  // inside root
    // A bundle's tree (bundle.h): its paths are relative, so it is used where it lies (mounted
    // whole at /kernel in a container) instead of being laid over /usr.
    bool self_contained = false;
    // A source kernel's source (root is then its prepared output tree, self-contained).
    std::filesystem::path source_dir;
    // The tree has no Module.symvers (a source kernel's modules_prepare makes none): modpost's
    // errors about unknown symbols are warnings (KBUILD_MODPOST_WARN=1).
    bool modpost_warn = false;
    KernelCompiler compiler;
    // The kernel's architecture (ARCH=, from its .config) when it is not this host's: the build
    // cross-compiles for it (ARCH= and CROSS_COMPILE=). "" builds for this host.
    std::string cross;
    // A program of the tree the build runs (fixdep, modpost) built for another architecture: a
    // container build rebuilds them for this host from the tree's sources (as Red Hat's
    // kernel-devel ships scripts/ whole); the local builder refuses.
    std::optional<ForeignProgram> foreign_program;
    std::filesystem::path module_src;  // copied, never built in place
    // The modules that are artifacts, relative to module_src without .ko ("falco", "sub/x"):
    // those named (required: each must be made) or those the source declares (at least one
    // must be made). Empty: the .ko files made in module_src's top directory.
    std::vector<std::string> modules;
    bool modules_required = false;
    // Subdirectories of module_src that are module trees of their own (module_tree.h): their
    // .ko files are not artifacts, their errors not the build's.
    std::vector<std::string> nested_trees;
    std::filesystem::path work_dir;  // private, empty; the builder may fill it
    std::filesystem::path log;       // the build's output goes here
    std::chrono::seconds timeout{900};
    int make_jobs = 1;
};

// A source kernel to prepare for module builds (make olddefconfig modules_prepare): out_dir,
// empty but for the .config to start from, becomes the output tree (make O=).
struct PrepareJob {
    std::string release;
    std::filesystem::path source_dir;  // read-only
    std::filesystem::path out_dir;
    KernelCompiler compiler;
    std::string cross;         // as BuildJob::cross
    std::string localversion;  // make's LOCALVERSION=, so that the tree's release is `release`
    std::filesystem::path log;
    std::chrono::seconds timeout{1800};
    int make_jobs = 1;
};

// The one-line reason of a failed build from its log: the first compiler "error:" of the
// module's own compilation (never of a nested tree's, nor a probe's output a Makefile echoes),
// else a Makefile's own "*** ... Stop.", else modpost's ERROR, else make's last Error line; cut
// to a readable length. `build_dir` is the module's directory as the log names it.
std::string build_error_line(const std::filesystem::path& log, const std::string& build_dir,
                             const std::vector<std::string>& nested_trees);

// The artifacts among what a build made in `src` (BuildJob::modules); throws naming what is
// missing or ambiguous and what was made.
std::vector<std::filesystem::path> select_modules(const std::filesystem::path& src, const BuildJob& job);

class Builder {
public:
    virtual ~Builder() = default;
    // "local", or the image a container builder uses for this job.
    virtual std::string name(const BuildJob& job) const = 0;
    // Why this builder (image) for this job, in one line; empty when there is no choice.
    virtual std::string choice(const BuildJob&) const { return {}; }
    // Builds the job: the artifacts' .ko files (inside work_dir), or throws Error with one line
    // saying why not (no image for the compiler, make's first error, a time limit, ...).
    virtual std::vector<std::filesystem::path> build(const BuildJob& job) = 0;
    // Prepares a source kernel with the compiler its config names; throws Error with one line
    // saying why not.
    virtual void prepare(const PrepareJob& job) = 0;
};

// Runs make under bwrap: new mount, pid, network, ipc and uts namespaces (and user, when not
// root); the host's root read-only; fresh /dev and /proc; throw-away /tmp (HOME) and /run; the
// module's private copy at /build, the one writable host path; a clean environment. As root,
// bwrap mounts with root's rights and make runs as nobody (uid 65534) without capabilities, the
// copy made nobody's. Without bwrap, or where it cannot make its namespaces, the build fails
// saying so: it never runs unsandboxed.
class LocalBuilder : public Builder {
public:
    std::string name(const BuildJob&) const override { return "local"; }
    std::vector<std::filesystem::path> build(const BuildJob& job) override;
    void prepare(const PrepareJob& job) override;
};

// Builds in a Docker container from a builder image chosen by the kernel's gcc: no network,
// the headers mounted read-only where the Makefiles expect them, only the module's private
// copy writable, an unprivileged user, CPU and memory limits, a time limit; the container is
// removed whatever happens, and on SIGINT/SIGTERM every container of this process is removed
// before kbuild exits.
class DockerBuilder : public Builder {
public:
    DockerBuilder(const Docker& docker, std::vector<BuilderImage> images, std::string family);
    ~DockerBuilder() override;
    DockerBuilder(const DockerBuilder&) = delete;
    DockerBuilder& operator=(const DockerBuilder&) = delete;
    std::string name(const BuildJob& job) const override;
    std::string choice(const BuildJob& job) const override;
    std::vector<std::filesystem::path> build(const BuildJob& job) override;
    void prepare(const PrepareJob& job) override;

    double cpus = 2;
    std::int64_t memory_bytes = std::int64_t{4} << 30;

private:
    // The image for a kernel's compiler, the choice said in `log`; throws Error when there is none.
    BuilderImage image_for(const KernelCompiler& compiler, const std::string& cross,
                           const std::filesystem::path& log) const;
    // A tree whose fixdep or modpost is another architecture's (job.foreign_program): its scripts
    // directory copied into the work directory, mounted writable over the tree's in `spec`, and
    // its host programs rebuilt there by the image's compiler; throws Error saying why not.
    void rebuild_host_programs(const BuildJob& job, const BuilderImage& image, ContainerSpec& spec,
                               const std::string& kernel_dir) const;
    // Runs `spec` (its image, mounts, command and working directory set) as every build runs:
    // no network, an unprivileged user, the limits, kbuild's labels; the command and its output
    // go to `log`.
    ContainerResult run_logged(ContainerSpec spec, const std::string& release, const std::filesystem::path& log,
                               std::chrono::seconds timeout) const;

    const Docker& docker_;
    std::vector<BuilderImage> images_;
    std::string family_;
    int cleanup_;  // removes this process's containers when kbuild is interrupted
};

// Copies a module source tree (regular files, directories, symlinks), leaving out build
// products (*.o, *.ko, *.mod*, .*.cmd, Module.symvers, modules.order).
void copy_module_source(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace kbuild
