#include <kbuild/digest.hpp>
#include <kbuild/kernel_tree.hpp>

#include <filesystem>

namespace fs = std::filesystem;

namespace kbuild {

KernelDir kernel_dir_in(const KernelDirRequest& request, const std::string& under, const std::string& prefix) {
    const fs::path dir = fs::path(request.root) / under / (prefix + request.release);
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": missing (no headers for " + request.release + ")");
    return {dir.string()};
}

ConfigHash config_in_kernel_dir(const ConfigHashRequest& request) {
    const fs::path config = fs::path(request.kernel_dir) / ".config";
    if (!fs::is_regular_file(config)) throw Error(config.string() + ": missing (the headers package has no .config)");
    return {config.string(), md5_file(config.string())};
}

}  // namespace kbuild
