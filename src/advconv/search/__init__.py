"""Search under the rules (``advconv search``, the ``search`` extra): nets and recipes proposed by
Optuna (``space``), refused by the rule check or trained to a budget and pruned on their curves
(``study``), and what the study found written out (``findings``)."""
