"""The modelling core: configs, data, models, losses, trainer, evaluation.

Pure computation: no database, no Streamlit, no device choice inside model files.

Importing it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment says otherwise, before
anything loads torch: OpenMP's waiting threads otherwise spin for the cores, and where
processes outnumber cores (the server's job, a CLI run, a browser) each step waits on
spinning threads of the others. On the 2-core machine a dual-tower loop beside two busy
processes ran at 2.1 steps/s with spinning threads and 26.8 with passive ones (issue 26);
worker processes inherit the setting.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
