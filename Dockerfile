# The gateway and the node tools in one image (no GPU libraries needed to build it; on a GPU node
# run it with the NVIDIA container runtime so NVML is available).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY gridlink ./gridlink
COPY pals_core ./pals_core
COPY migrations ./migrations
RUN pip install --no-cache-dir .

EXPOSE 8000
CMD ["sh", "-c", "gridlink db upgrade && gridlink serve --host 0.0.0.0"]
