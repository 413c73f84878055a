# The corpus: generated in the lab, sampled from hub datasets at paper scale.

if is_lab("corpus"):

    rule make_corpus:
        output:
            files=corpus_files(),
            manifest=f"{RUN}/corpus/manifest.json",
        log:
            f"{RUN}/logs/make_corpus.log",
        benchmark:
            f"{RUN}/benchmarks/make_corpus.tsv"
        # corpus, tokenizer, pretraining: the lab's long pole goes first; jobs that need
        # nothing from it (the theory toy, versions) wait a few seconds instead
        priority: 10
        conda:
            TORCH_ENV
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            domains={name: d["lab"] for name, d in config["domains"].items()},
            seed=config["seed"],
        script:
            "../workflow_scripts/make_corpus.py"

    rule build_tokenizer:
        input:
            manifest=f"{RUN}/corpus/manifest.json",
        output:
            tokenizer=directory(f"{RUN}/tokenizer"),
        log:
            f"{RUN}/logs/build_tokenizer.log",
        benchmark:
            f"{RUN}/benchmarks/build_tokenizer.tsv"
        priority: 10
        conda:
            TORCH_ENV
        resources:
            mem_mb=1000,
            runtime=5,
        script:
            "../workflow_scripts/build_tokenizer.py"

else:

    rule sample_hub_corpus:
        output:
            files=corpus_files(),
            manifest=f"{RUN}/corpus/manifest.json",
        log:
            f"{RUN}/logs/sample_hub_corpus.log",
        benchmark:
            f"{RUN}/benchmarks/sample_hub_corpus.tsv"
        conda:
            TORCH_ENV
        resources:
            mem_mb=8000,
            runtime=120,
        params:
            domains={name: d["hub"] for name, d in config["domains"].items()},
            counts=config["corpus"].get("counts"),
            seed=config["seed"],
            cache_dir=config["corpus"].get("cache_dir"),
        script:
            "../workflow_scripts/sample_hub_corpus.py"
