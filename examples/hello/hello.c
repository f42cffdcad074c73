// A minimal out-of-tree kernel module: what kbuild's demo and tests build for real kernels.
#include <linux/init.h>
#include <linux/module.h>

static int __init hello_init(void)
{
	pr_info("hello from kbuild\n");
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("goodbye from kbuild\n");
}

module_init(hello_init);
module_exit(hello_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kbuild example module");
MODULE_VERSION("1.0.0");
