from setuptools import find_packages, setup

package_name = "gamgin_knowledge"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={package_name: ["jokes/*.md", "questions/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="gamgin team",
    maintainer_email="team@gamgin.dev",
    description="The owner's documents and a joke collection as hybrid (FAISS + BM25) knowledge",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "knowledge_node = gamgin_knowledge.node:main",
            "gamgin_kb = gamgin_knowledge.cli:main",
        ]
    },
)
