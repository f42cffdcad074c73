// Where an unpacked root keeps a release's kernel build tree and its .config: what every
// family's get_kernel_dir and hash_config come down to.
#pragma once

#include <kbuild/types.hpp>

#include <string>

namespace kbuild {

// root/<under>/<prefix><release> when it is a directory, else an Error naming the path:
// ("usr/src", "linux-headers-") for the deb family, ("usr/src/kernels", "") for the rpm family.
KernelDir kernel_dir_in(const KernelDirRequest& request, const std::string& under, const std::string& prefix = "");

// The MD5 of <kernel dir>/.config, else an Error naming the missing path.
ConfigHash config_in_kernel_dir(const ConfigHashRequest& request);

}  // namespace kbuild
