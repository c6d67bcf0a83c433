FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY leadrecord ./leadrecord
COPY contacts ./contacts
COPY handoff ./handoff
COPY reports ./reports
COPY events ./events
COPY demo ./demo
RUN pip install --no-cache-dir -c constraints.txt .
COPY . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
# The signing key's and the checkpoints' volumes take these folders' owner when first made.
RUN useradd --system --uid 1000 leadrecord \
    && mkdir -p /app/data /app/signing /app/checkpoints \
    && chown leadrecord /app/data /app/signing /app/checkpoints
USER leadrecord
EXPOSE 8000
