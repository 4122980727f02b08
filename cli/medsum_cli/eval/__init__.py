"""``medsum eval``: what a model's summaries are worth on your own reports.

- :mod:`~medsum_cli.eval.labeler`: a CheXpert-style observation labeler (14 observations, negation and
  uncertainty aware);
- :mod:`~medsum_cli.eval.inputs`: the references and results files;
- :mod:`~medsum_cli.eval.baselines`: what copying would give;
- :mod:`~medsum_cli.eval.rouge`: ROUGE-L (shown, and labelled gameable);
- :mod:`~medsum_cli.eval.prices`: the price table behind cost per 1,000 reports;
- :mod:`~medsum_cli.eval.metrics`: every metric (docs/eval.md defines them);
- :mod:`~medsum_cli.eval.report`: terminal and Markdown output;
- :mod:`~medsum_cli.eval.command`: the command's run (files, the API, the gates), loaded only when
  ``medsum eval`` runs; :mod:`medsum_cli.commands.eval` registers its options.

All but ``command`` are pure: it does the I/O and the API calls.
"""
