// A target's record as a real run writes one, for the benchmarks that record many.
#pragma once

#include "output/artifacts.h"

#include <kbuild/types.hpp>

#include <string>

namespace kbuild::bench {

// Target n (kernel 6.1.0-<n>-amd64), built; `round` changes its inputs, as a rebuild would.
inline TargetRecord sample_record(size_t n, size_t round = 0) {
    TargetRecord t{"debian", "amd64", "6.1.0-" + std::to_string(n) + "-amd64", "#1 SMP PREEMPT_DYNAMIC Debian",
                   "hello"};
    t.module_version = "1.0";
    t.config_md5 = std::string(32, 'a');
    t.status = TargetStatus::built;
    t.artifacts = {{"hello-1.0-x86_64-" + t.kernelrelease + "-" + t.config_md5 + ".ko", std::string(64, 'b'),
                    t.kernelrelease + " SMP preempt mod_unload modversions"}};
    t.compiler = "gcc-12 (Debian 12.2.0-14) 12.2.0";
    t.builder = "local";
    t.log = "logs/debian_amd64_" + t.kernelrelease + "_hello.log";
    t.duration_s = 4.2;
    t.inputs = std::string(63, 'c') + std::to_string(round % 10);
    t.packages = {"https://example.org/pool/main/l/linux/linux-headers-" + t.kernelrelease + "_amd64.deb"};
    t.finished_at = "2026-01-01T00:00:00Z";
    t.target = "debian";
    t.naming = "probe-builder";
    return t;
}

}  // namespace kbuild::bench
