// The least a new rpm-family plugin writes: its repositories.
#include <kbuild/rpm_repo.hpp>

namespace {

class MinimalRpm : public kbuild::rpm::FamilyPlugin {
public:
    MinimalRpm(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, kbuild::rpm::kernel_devel_package,
                       {{{"minimalrpm", "9/AppStream/{arch}/os"}}, false, "repository paths ({arch})"}) {}
};

}  // namespace

KBUILD_PLUGIN(MinimalRpm, "minimalrpm", "1.0.0", "centos", "minimalrpm")
