// Artifact naming: the presets of one template (DESIGN.md section 4) and templates of one's own.
#include "output/artifacts.h"
#include "test_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const NamingFields kFields{"hello",    "1.0.0",      "amd64",  "5.15.0-1036-aws", "40~20.04.1", "0123abcd",
                           "feedbeef", "ubuntu-aws", "ubuntu", "20.04.1",         "x86_64"};

std::string error_of(const std::string& naming) {
    try {
        check_naming_template(naming);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(Naming, EachPresetNamesAsDocumented) {
    EXPECT_EQ(artifact_name(naming_preset("probe-builder"), kFields), "hello-1.0.0-x86_64-5.15.0-1036-aws-0123abcd.ko");
    // Where Falco's loader looks: <driver version>/<uname -m>/falco_<target>_<uname -r>_<kernel version>.ko
    EXPECT_EQ(artifact_name(naming_preset("falco"), kFields),
              "1.0.0/x86_64/falco_ubuntu-aws_5.15.0-1036-aws_40~20.04.1.ko");
    EXPECT_EQ(artifact_name(naming_preset("collector"), kFields), "1.0.0/collector-5.15.0-1036-aws.ko.gz");
    EXPECT_EQ(artifact_name(naming_preset("service"), kFields),
              "v1/module/ubuntu-aws/x86_64/1.0.0/5.15.0-1036-aws/40~20.04.1/feedbeef/hello.ko");
    EXPECT_EQ(naming_preset("nonesuch"), "");
    EXPECT_EQ(naming_presets(), (std::vector<std::string>{"probe-builder", "falco", "collector", "service"}));
}

TEST(Naming, MachineIsUnameMOfTheDistrosArchitecture) {
    EXPECT_EQ(machine_of("amd64"), "x86_64");
    EXPECT_EQ(machine_of("arm64"), "aarch64");
    EXPECT_EQ(machine_of("x86_64"), "x86_64");
    EXPECT_EQ(machine_of("aarch64"), "aarch64");
}

TEST(Naming, ATemplateOfOnesOwnUsesEveryFieldAndNoValueAddsAPath) {
    EXPECT_EQ(artifact_name("{distro}/{variant}/{module}.ko", kFields), "ubuntu/20.04.1/hello.ko");
    EXPECT_EQ(artifact_name("{machine}/{arch}/{module}.ko", kFields), "x86_64/amd64/hello.ko");
    NamingFields sneaky = kFields;
    sneaky.module_version = "../../etc";
    EXPECT_EQ(artifact_name("{module_version}/{module}.ko", sneaky), ".._.._etc/hello.ko");
    EXPECT_EQ(error_of("{module}-{kernel}.ko"),
              "naming template {module}-{kernel}.ko: no field {kernel} (fields: module, module_version, arch, "
              "kernelrelease, kernelversion, config_md5, config_sha256, target, distro, variant, machine)");
    EXPECT_EQ(error_of("{module.ko"), "naming template {module.ko: a '{' with no '}'");
    EXPECT_EQ(error_of("/abs/{module}.ko"), "naming template /abs/{module}.ko: not a relative path");
    EXPECT_EQ(error_of("../{module}.ko"),
              "naming template ../{module}.ko: the path ../module.ko has an empty, '.' or '..' part");
    EXPECT_EQ(error_of(naming_preset("service")), "");
}

}  // namespace
