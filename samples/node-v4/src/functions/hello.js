// hello: greets the `name` from the query string or a JSON body, else the world.
const { app } = require('@azure/functions');

app.http('hello', {
    methods: ['GET', 'POST'],
    authLevel: 'anonymous',
    handler: async (request) => {
        let name = request.query.get('name');
        if (!name) {
            try {
                const body = JSON.parse(await request.text());
                name = body && typeof body === 'object' ? body.name : undefined;
            } catch {
                // Not JSON (or no body): greet the world.
            }
        }
        return { body: `Hello, ${name || 'world'}!` };
    },
});
