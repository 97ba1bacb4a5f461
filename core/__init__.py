"""The modelling core: configs, data, models, losses, trainer, evaluation.

Pure computation: no database, no Streamlit, no device choice inside model files.
"""
