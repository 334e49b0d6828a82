from setuptools import find_packages, setup

package_name = "gamgin_wake"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    # the trained 金坚 model and the benchmark's held-out sentences travel with the code
    package_data={package_name: ["models/*.npz", "heldout_wake.yaml", "heldout_wake_2.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="gamgin team",
    maintainer_email="team@gamgin.dev",
    description="Wake-word stage: a trained 金坚 detector, few-shot templates, Porcupine",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "wake_node = gamgin_wake.node:main",
            "wake_enroll = gamgin_wake.enroll:main",
            "wake_train = gamgin_wake.train:main",
        ]
    },
)
